"""Django settings for Kequn; every value comes from a KEQUN_* environment variable.

Environment variables (defaults in brackets):
  KEQUN_DATA_DIR       data directory: SQLite file, secret key, uploads [./kequn-data]
  KEQUN_DATABASE_URL   database URL, sqlite:/// or postgresql:// [SQLite in the data dir]
  KEQUN_SECRET_KEY     Django secret key [generated into the data dir on first run]
  KEQUN_DEBUG          development mode [false]
  KEQUN_ALLOWED_HOSTS  comma-separated host names [localhost,127.0.0.1,[::1],testserver]
  KEQUN_TIME_ZONE      time zone of the business [Asia/Shanghai]
  KEQUN_LANGUAGE       default language, en or zh-hans [zh-hans]
  KEQUN_SECURE_COOKIES send cookies over HTTPS only, with HSTS [false; set true behind TLS]
  KEQUN_SESSION_IDLE_MINUTES  log out after this long without a request [30]
  KEQUN_SESSION_MAX_HOURS     log out this long after login, active or not [12]
  KEQUN_LOGIN_FAILURE_LIMIT   failed logins before a user name is locked at one address [5]
  KEQUN_LOGIN_COOLOFF_MINUTES how long such a lock lasts [15]
  KEQUN_LOGIN_RATE     login attempts per client address and per user name [20/min]
  KEQUN_API_RATE       API calls per token or session user [600/min]
  KEQUN_API_IP_RATE    API calls per client address [1200/min]
  KEQUN_COLLECT_RATE   /v1 event-collection calls per write key [off]
  KEQUN_PROXY_COUNT    reverse proxies in front whose X-Forwarded-For is trusted [0]
  KEQUN_REDIS_URL      cache in Redis, e.g. redis://127.0.0.1:6379/0 [a file cache in the data dir]
  KEQUN_BACKUP_DIR     where `kequn backup create` and the nightly backup write [<data dir>/backups]
  KEQUN_BACKUP_KEEP    nightly backups kept [7]
  KEQUN_PRIVACY_DEADLINE_DAYS days to answer a data-subject request [15, PIPL practice;
                       GDPR allows one month: set 30 if only GDPR applies]
  KEQUN_XLSX_MAX_MB    Excel imports: uncompressed size of a file, in MB [100]
  KEQUN_XLSX_MAX_ROWS  Excel imports: rows of the first sheet [1000000]
  KEQUN_XLSX_MAX_COLUMNS  Excel imports: columns of the first sheet [500]
  KEQUN_XLSX_MAX_STRINGS  Excel imports: distinct texts (shared strings) [2000000]
  KEQUN_PDF_FONT       TrueType font (.ttf/.ttc) embedded in PDF reports for Chinese text
                       [/usr/share/fonts/truetype/wqy/wqy-microhei.ttc, Debian fonts-wqy-microhei]
"""

from __future__ import annotations

import urllib.parse
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from django.templatetags.static import static
from django.utils.translation import gettext_lazy as _

from kequn.conf import (
    env_bool,
    get_data_dir,
    get_database_url,
    load_secret_key,
    read_env,
    read_number,
    read_whole_number,
)

BASE_DIR = Path(__file__).resolve().parent
DATA_DIR = get_data_dir()

SECRET_KEY = load_secret_key()
DEBUG = env_bool("KEQUN_DEBUG", False)
ALLOWED_HOSTS = [
    h.strip()
    for h in read_env("KEQUN_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",")
    if h.strip()
]

INSTALLED_APPS = [
    "kequn.dashboard.sites.UnfoldConfig",  # unfold, with kequn.dashboard.sites.KequnAdminSite
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
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "csp",
    "kequn",
    "kequn.security",
    "kequn.security.keyring",
    "kequn.security.audit",
    "kequn.privacy",
    "kequn.customers",
    "kequn.commerce",
    "kequn.events",
    "kequn.demo",
    "kequn.jobs",
    "kequn.scoring",
    "kequn.ingest",
    "kequn.segments",
    "kequn.recommend",
    "kequn.engage",
    "kequn.journeys",
    "kequn.service",
    "kequn.loyalty",
    "kequn.feedback",
    "kequn.sales",
    "kequn.monitoring",
    "kequn.dashboard",
]

MIDDLEWARE = [
    # First: times every request (metrics, the JSON request log) and answers 503 when the
    # database is down (kequn.monitoring).
    "kequn.monitoring.middleware.RequestMonitoringMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # API answers hold personal data: Cache-Control no-store, also on 4xx and 429 answers.
    "kequn.security.headers.NoStoreMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "kequn.security.audit.middleware.AuditContextMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "kequn.security.middleware.SessionTimeoutMiddleware",
    "kequn.security.middleware.TwoFactorMiddleware",
    "kequn.security.middleware.RateLimitMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so it sees the lockout flag the authentication backend sets.
    "axes.middleware.AxesMiddleware",
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
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # No JIT compilation: Kequn's queries are short or set-based, and compiling them took
    # longer than running them (the points expiry: 1.5 s against 0.2 s per range of members).
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")
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
# Django's default is /accounts/profile/, a page Kequn does not have.
LOGIN_REDIRECT_URL = "admin:index"
AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out user name at this address before the password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Lock the pair (user name, address): spraying user names locks nobody else out, and a user
# locked at one address can still log in from another.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = read_whole_number("KEQUN_LOGIN_FAILURE_LIMIT", 5, low=1, high=1_000)
AXES_COOLOFF_TIME = timedelta(
    minutes=read_whole_number("KEQUN_LOGIN_COOLOFF_MINUTES", 15, low=1, high=10_080)
)
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "kequn.security.views.lockout_response"
AXES_CLIENT_IP_CALLABLE = "kequn.security.middleware.axes_client_ip"
AXES_VERBOSE = False
KEQUN_PROXY_COUNT = read_whole_number("KEQUN_PROXY_COUNT", 0, low=0, high=10)

# The address customers reach this server at, for links in messages (survey answers,
# unsubscribing); and how long the closed loop gives a poor survey answer's follow-up.
KEQUN_PUBLIC_URL = read_env("KEQUN_PUBLIC_URL", "http://localhost:8000")
KEQUN_FEEDBACK_FOLLOW_UP_HOURS = read_whole_number(
    "KEQUN_FEEDBACK_FOLLOW_UP_HOURS", 48, low=1, high=8_760
)
# Rate limits ("600/min", "10/s", "off"), read on every request so tests can override them.
KEQUN_LOGIN_RATE = read_env("KEQUN_LOGIN_RATE", "20/min")
KEQUN_API_RATE = read_env("KEQUN_API_RATE", "600/min")
KEQUN_API_IP_RATE = read_env("KEQUN_API_IP_RATE", "1200/min")
# /v1 event collection must take ~10k events/s from a few write keys: no limit unless asked.
KEQUN_COLLECT_RATE = read_env("KEQUN_COLLECT_RATE", "off")
OTP_TOTP_ISSUER = "Kequn"

# One cache shared by every server worker (rate-limit counters must add up across them).
CACHES: dict[str, dict[str, Any]]
if read_env("KEQUN_REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": read_env("KEQUN_REDIS_URL", ""),
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
            "OPTIONS": {"MAX_ENTRIES": 20_000},
        }
    }

LANGUAGE_CODE = read_env("KEQUN_LANGUAGE", "zh-hans")
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Thousands separators in Chinese too (kequn/formats/zh_Hans): one number format per language.
FORMAT_MODULE_PATH = ["kequn.formats"]
TIME_ZONE = read_env("KEQUN_TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True
# PDF reports embed this font for Chinese text (Debian package fonts-wqy-microhei).
PDF_FONT = read_env("KEQUN_PDF_FONT", "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")

STATIC_URL = "static/"
# Serve straight from the installed packages: `kequn serve` needs no collectstatic step.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Engagement channels (kequn.engage.channels): each unset channel refuses to send and names
# the setting to set. Rates are messages per second (0 = no limit).
KEQUN_EMAIL_URL = read_env("KEQUN_EMAIL_URL", "")
KEQUN_EMAIL_FROM = read_env("KEQUN_EMAIL_FROM", "")
KEQUN_EMAIL_RATE = read_number("KEQUN_EMAIL_RATE", 0.0, low=0, high=1_000_000)
KEQUN_EMAIL_CONNECTIONS = read_whole_number("KEQUN_EMAIL_CONNECTIONS", 4, low=1, high=64)
KEQUN_DKIM_KEY_FILE = read_env("KEQUN_DKIM_KEY_FILE", "")
KEQUN_DKIM_SELECTOR = read_env("KEQUN_DKIM_SELECTOR", "")
KEQUN_SMS_URL = read_env("KEQUN_SMS_URL", "")
KEQUN_SMS_TOKEN = read_env("KEQUN_SMS_TOKEN", "")
KEQUN_SMS_SIGN_NAME = read_env("KEQUN_SMS_SIGN_NAME", "")
KEQUN_SMS_RATE = read_number("KEQUN_SMS_RATE", 20.0, low=0, high=1_000_000)
KEQUN_WECHAT_APP_ID = read_env("KEQUN_WECHAT_APP_ID", "")
KEQUN_WECHAT_APP_SECRET = read_env("KEQUN_WECHAT_APP_SECRET", "")
KEQUN_WECHAT_API_URL = read_env("KEQUN_WECHAT_API_URL", "https://api.weixin.qq.com")
KEQUN_WECHAT_RATE = read_number("KEQUN_WECHAT_RATE", 20.0, low=0, high=1_000_000)
KEQUN_WEBHOOK_SECRET = read_env("KEQUN_WEBHOOK_SECRET", "")
KEQUN_WEBHOOK_RATE = read_number("KEQUN_WEBHOOK_RATE", 10.0, low=0, high=1_000_000)
# Django's own mail (alerts, reminders, password resets) goes through the same SMTP server.
if KEQUN_EMAIL_URL:
    _mail = urllib.parse.urlsplit(KEQUN_EMAIL_URL)
    EMAIL_HOST = _mail.hostname or "localhost"
    EMAIL_USE_SSL = _mail.scheme == "smtps"
    EMAIL_USE_TLS = _mail.scheme == "smtp+starttls"
    try:
        EMAIL_PORT = _mail.port or (465 if EMAIL_USE_SSL else 587 if EMAIL_USE_TLS else 25)
    except ValueError:  # the email channel names the bad port when it is used
        EMAIL_PORT = 25
    EMAIL_HOST_USER = urllib.parse.unquote(_mail.username or "")
    EMAIL_HOST_PASSWORD = urllib.parse.unquote(_mail.password or "")
    EMAIL_TIMEOUT = 30
if KEQUN_EMAIL_FROM:
    DEFAULT_FROM_EMAIL = SERVER_EMAIL = KEQUN_EMAIL_FROM
# Campaigns (kequn.engage): the global control group, marketing caps, quiet hours in the
# business time zone, and how long a worker's claim on a batch lasts (links use KEQUN_PUBLIC_URL).
KEQUN_CONTROL_GROUP_PERCENT = read_number("KEQUN_CONTROL_GROUP_PERCENT", 5.0, low=0, high=100)
KEQUN_MARKETING_CAPS = read_env("KEQUN_MARKETING_CAPS", "channel_day=1,channel_week=3,day=2,week=5")
KEQUN_QUIET_HOURS = read_env("KEQUN_QUIET_HOURS", "21:00-09:00")
KEQUN_SEND_LEASE_SECONDS = read_whole_number("KEQUN_SEND_LEASE_SECONDS", 60, low=1, high=86_400)
# Journeys (kequn.journeys): seconds between the runner's quick passes (events to first send);
# 0 leaves only the worker's pass every minute.
KEQUN_JOURNEY_POLL_SECONDS = read_number("KEQUN_JOURNEY_POLL_SECONDS", 2.0, low=0, high=3600)
KEQUN_PRIVACY_DEADLINE_DAYS = read_whole_number("KEQUN_PRIVACY_DEADLINE_DAYS", 15, low=1, high=365)
# Limits on an Excel file, checked before it is parsed (kequn.ingest.readers).
KEQUN_XLSX_MAX_MB = read_whole_number("KEQUN_XLSX_MAX_MB", 100, low=1, high=100_000)
KEQUN_XLSX_MAX_ROWS = read_whole_number("KEQUN_XLSX_MAX_ROWS", 1_000_000, low=1, high=1_000_000_000)
KEQUN_XLSX_MAX_COLUMNS = read_whole_number("KEQUN_XLSX_MAX_COLUMNS", 500, low=1, high=16_384)
KEQUN_XLSX_MAX_STRINGS = read_whole_number(
    "KEQUN_XLSX_MAX_STRINGS", 2_000_000, low=1, high=10_000_000_000
)
# Service (kequn.service): the inbound mailbox polled for tickets, the support address replies
# come from, the attachment size limit, and what an email from an unknown sender becomes.
KEQUN_SERVICE_IMAP_URL = read_env("KEQUN_SERVICE_IMAP_URL", "")
KEQUN_SERVICE_ADDRESS = read_env("KEQUN_SERVICE_ADDRESS", "")
KEQUN_SERVICE_ATTACHMENT_MAX_MB = read_number(
    "KEQUN_SERVICE_ATTACHMENT_MAX_MB", 10.0, low=0, high=1000
)
KEQUN_SERVICE_FORM_RATE = read_env("KEQUN_SERVICE_FORM_RATE", "5/10min")
KEQUN_SERVICE_UNKNOWN_SENDER = read_env("KEQUN_SERVICE_UNKNOWN_SENDER", "create")
KEQUN_SESSION_IDLE_MINUTES = read_whole_number("KEQUN_SESSION_IDLE_MINUTES", 30, low=1, high=10_080)
KEQUN_SESSION_MAX_HOURS = read_whole_number("KEQUN_SESSION_MAX_HOURS", 12, low=1, high=8_760)
# The browser drops an idle cookie too; kequn.security.middleware enforces both limits.
SESSION_COOKIE_AGE = KEQUN_SESSION_IDLE_MINUTES * 60
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("KEQUN_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
CSRF_COOKIE_SAMESITE = "Lax"
if SESSION_COOKIE_SECURE:
    SECURE_HSTS_SECONDS = 365 * 24 * 3600
    SECURE_HSTS_INCLUDE_SUBDOMAINS = False
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REFERRER_POLICY = "same-origin"
# Everything is served from this host. Alpine.js (unfold) evaluates its attribute
# expressions with new Function(), hence 'unsafe-eval'; unfold and Chart.js set inline styles.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", "'unsafe-eval'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
SECURE_CONTENT_TYPE_NOSNIFF = True
# An expired form gets the themed 403 page in the user's language, not Django's English one.
CSRF_FAILURE_VIEW = "kequn.errors.csrf_failure"
X_FRAME_OPTIONS = "DENY"

TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

# Monitoring (kequn.monitoring): /metrics wants this bearer token (unset: local addresses
# only); alert thresholds come from a TOML/JSON file; log lines are JSON unless "text".
KEQUN_METRICS_TOKEN = read_env("KEQUN_METRICS_TOKEN", "")
KEQUN_ALERTS_CONFIG = read_env("KEQUN_ALERTS_CONFIG", "")
KEQUN_LOG_FORMAT = read_env("KEQUN_LOG_FORMAT", "json").strip().lower()
LOG_LEVEL = read_env("KEQUN_LOG_LEVEL", "WARNING")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"routine_4xx": {"()": "kequn.logfilters.RoutineClientErrorFilter"}},
    "formatters": {"json": {"()": "kequn.logfilters.JSONFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            **({"formatter": "json"} if KEQUN_LOG_FORMAT == "json" else {}),
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # A 403 or 404 is one line in the log, without a traceback (5xx keep theirs).
    "loggers": {
        **{
            name: {"filters": ["routine_4xx"]}
            for name in ("django.request", "django.security.csrf")
        },
        # One line per request (id, user, view, status, duration) at INFO, whatever the level.
        "kequn.requests": {"level": "INFO" if LOG_LEVEL != "ERROR" else "ERROR"},
    },
}

NINJA_PAGINATION_PER_PAGE = 50

UNFOLD = {
    "SITE_TITLE": _("Kequn"),
    "SITE_HEADER": _("Kequn 客群"),
    "SITE_SUBHEADER": _("Customer base"),
    "SITE_URL": "/",
    "SITE_SYMBOL": "groups",
    # The switch sits in the header (templates/kequn/language_toggle.html), not the user menu.
    "SHOW_LANGUAGES": False,
    "SHOW_HISTORY": True,
    "SHOW_VIEW_ON_SITE": False,
    "STYLES": [lambda request: static("kequn/kequn.css")],
    "SITE_FAVICONS": [
        {
            "rel": "icon",
            "type": "image/svg+xml",
            "href": lambda request: static("kequn/favicon.svg"),
        }
    ],
    "DASHBOARD_CALLBACK": "kequn.dashboard.views.dashboard_callback",
    "SIDEBAR": {
        "show_search": True,
        "show_all_applications": False,
        # The items, with who may see each, are kequn.sidebar's (settings load first).
        "navigation": "kequn.sidebar.build_navigation",
    },
}
