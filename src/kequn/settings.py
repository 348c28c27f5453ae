"""Django settings for Kequn; every value comes from a KEQUN_* environment variable.

Environment variables (defaults in brackets):
  KEQUN_DATA_DIR       data directory: SQLite file, secret key, uploads [./kequn-data]
  KEQUN_DATABASE_URL   database URL, sqlite:/// or postgresql:// [SQLite in the data dir]
  KEQUN_SECRET_KEY     Django secret key [generated into the data dir on first run]
  KEQUN_DEBUG          development mode [false]
  KEQUN_ALLOWED_HOSTS  comma-separated host names [localhost,127.0.0.1,[::1],testserver]
  KEQUN_TIME_ZONE      time zone of the business [Asia/Shanghai]
  KEQUN_LANGUAGE       default language, en or zh-hans [zh-hans]
  KEQUN_SECURE_COOKIES send cookies over HTTPS only [false; set true behind TLS]
  KEQUN_PDF_FONT       TrueType font (.ttf/.ttc) embedded in PDF reports for Chinese text
                       [/usr/share/fonts/truetype/wqy/wqy-microhei.ttc, Debian fonts-wqy-microhei]
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.templatetags.static import static
from django.urls import reverse_lazy
from django.utils.translation import gettext_lazy as _

from kequn.conf import env_bool, get_data_dir, get_database_url, load_secret_key

BASE_DIR = Path(__file__).resolve().parent
DATA_DIR = get_data_dir()

SECRET_KEY = load_secret_key()
DEBUG = env_bool("KEQUN_DEBUG", False)
ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("KEQUN_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(
        ","
    )
    if h.strip()
]

INSTALLED_APPS = [
    "unfold",
    "unfold.contrib.filters",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_tasks",
    "django_tasks_db",
    "ninja",
    "kequn",
    "kequn.security",
    "kequn.security.keyring",
    "kequn.security.audit",
    "kequn.security.privacy",
    "kequn.customers",
    "kequn.commerce",
    "kequn.events",
    "kequn.demo",
    "kequn.jobs",
    "kequn.scoring",
    "kequn.ingest",
    "kequn.segments",
    "kequn.recommend",
    "kequn.dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "kequn.urls"
WSGI_APPLICATION = "kequn.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": dj_database_url.parse(get_database_url(), conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets readers (the UI) work while the worker writes; IMMEDIATE avoids lock upgrades.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"

LANGUAGE_CODE = os.environ.get("KEQUN_LANGUAGE", "zh-hans")
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("KEQUN_TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True
# PDF reports embed this font for Chinese text (Debian package fonts-wqy-microhei).
PDF_FONT = os.environ.get("KEQUN_PDF_FONT", "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")

STATIC_URL = "static/"
# Serve straight from the installed packages: `kequn serve` needs no collectstatic step.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

SESSION_COOKIE_AGE = 8 * 3600
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("KEQUN_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("KEQUN_LOG_LEVEL", "WARNING")},
}

NINJA_PAGINATION_PER_PAGE = 50

UNFOLD = {
    "SITE_TITLE": _("Kequn"),
    "SITE_HEADER": _("Kequn 客群"),
    "SITE_SUBHEADER": _("Customer base"),
    "SITE_URL": "/",
    "SITE_SYMBOL": "groups",
    "SHOW_LANGUAGES": True,
    "SHOW_HISTORY": True,
    "SHOW_VIEW_ON_SITE": False,
    "STYLES": [lambda request: static("kequn/kequn.css")],
    "DASHBOARD_CALLBACK": "kequn.dashboard.views.dashboard_callback",
    "SIDEBAR": {
        "show_search": True,
        "show_all_applications": False,
        "navigation": [
            {
                "title": _("Overview"),
                "items": [
                    {
                        "title": _("Dashboard"),
                        "icon": "dashboard",
                        "link": reverse_lazy("admin:index"),
                    },
                    {
                        "title": _("Reports"),
                        "icon": "summarize",
                        "link": reverse_lazy("dashboard:reports"),
                    },
                ],
            },
            {
                "title": _("Customers"),
                "separator": True,
                "items": [
                    {
                        "title": _("Customers"),
                        "icon": "person",
                        "link": reverse_lazy("admin:customers_customer_changelist"),
                    },
                    {
                        "title": _("Identities"),
                        "icon": "badge",
                        "link": reverse_lazy("admin:customers_identity_changelist"),
                    },
                    {
                        "title": _("Tags"),
                        "icon": "sell",
                        "link": reverse_lazy("admin:customers_tag_changelist"),
                    },
                    {
                        "title": _("Tag groups"),
                        "icon": "folder",
                        "link": reverse_lazy("admin:customers_taggroup_changelist"),
                    },
                ],
            },
            {
                "title": _("Commerce"),
                "separator": True,
                "items": [
                    {
                        "title": _("Orders"),
                        "icon": "shopping_cart",
                        "link": reverse_lazy("admin:commerce_order_changelist"),
                    },
                    {
                        "title": _("Products"),
                        "icon": "inventory_2",
                        "link": reverse_lazy("admin:commerce_product_changelist"),
                    },
                    {
                        "title": _("Categories"),
                        "icon": "account_tree",
                        "link": reverse_lazy("admin:commerce_category_changelist"),
                    },
                    {
                        "title": _("Stores and channels"),
                        "icon": "storefront",
                        "link": reverse_lazy("admin:commerce_channel_changelist"),
                    },
                ],
            },
            {
                "title": _("Data import"),
                "separator": True,
                "items": [
                    {
                        "title": _("Import a file"),
                        "icon": "upload_file",
                        "link": reverse_lazy("admin:ingest_upload"),
                    },
                    {
                        "title": _("Import runs"),
                        "icon": "history",
                        "link": reverse_lazy("admin:ingest_importrun_changelist"),
                    },
                    {
                        "title": _("Quarantine"),
                        "icon": "report",
                        "link": reverse_lazy("admin:ingest_quarantinedrow_changelist"),
                    },
                    {
                        "title": _("Review queue"),
                        "icon": "compare_arrows",
                        "link": reverse_lazy("admin:ingest_matchcandidate_changelist"),
                    },
                    {
                        "title": _("Merges"),
                        "icon": "merge",
                        "link": reverse_lazy("admin:ingest_merge_changelist"),
                    },
                ],
            },
            {
                "title": _("Behaviour"),
                "separator": True,
                "items": [
                    {
                        "title": _("Events"),
                        "icon": "timeline",
                        "link": reverse_lazy("admin:events_event_changelist"),
                    },
                ],
            },
            {
                "title": _("Segments"),
                "separator": True,
                "items": [
                    {
                        "title": _("Segments"),
                        "icon": "filter_alt",
                        "link": reverse_lazy("admin:segments_segment_changelist"),
                    },
                    {
                        "title": _("Tag rules"),
                        "icon": "label",
                        "link": reverse_lazy("admin:segments_tagrule_changelist"),
                    },
                    {
                        "title": _("Tag customers in bulk"),
                        "icon": "new_label",
                        "link": reverse_lazy("admin:segments_tag_customers"),
                    },
                    {
                        "title": _("Personas"),
                        "icon": "diversity_3",
                        "link": reverse_lazy("admin:segments_persona_changelist"),
                    },
                    {
                        "title": _("Recommendations"),
                        "icon": "recommend",
                        "link": reverse_lazy("admin:recommend_recommendation_changelist"),
                    },
                ],
            },
            {
                "title": _("Administration"),
                "separator": True,
                "items": [
                    {
                        "title": _("Users"),
                        "icon": "manage_accounts",
                        "link": reverse_lazy("admin:auth_user_changelist"),
                    },
                    {
                        "title": _("Roles"),
                        "icon": "shield_person",
                        "link": reverse_lazy("admin:auth_group_changelist"),
                    },
                    {
                        "title": _("API tokens"),
                        "icon": "key",
                        "link": reverse_lazy("admin:security_apitoken_changelist"),
                    },
                    {
                        "title": _("API documentation"),
                        "icon": "api",
                        "link": "/api/docs",
                    },
                ],
            },
        ],
    },
}
