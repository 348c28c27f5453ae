from django.contrib import admin
from django.urls import path

from kequn.dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("export.<str:fmt>", admin.site.admin_view(views.export_dashboard), name="export"),
    path(
        "export/<str:app_label>/<str:model_name>/rows.<str:fmt>",
        admin.site.admin_view(views.export_rows),
        name="export_rows",
    ),
    path(
        "export/<str:app_label>/<str:model_name>.<str:fmt>",
        admin.site.admin_view(views.export_list),
        name="export_list",
    ),
    path("refresh/", admin.site.admin_view(views.refresh), name="refresh"),
    path("reports/", admin.site.admin_view(views.reports), name="reports"),
    path("reports/<str:name>", admin.site.admin_view(views.report_file), name="report_file"),
]
