from django.contrib.admin.apps import AdminConfig


class ZhikuAdminConfig(AdminConfig):
    default_site = "marketplace.admin_site.ZhikuAdminSite"
