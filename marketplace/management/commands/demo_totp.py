import time

from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from marketplace import demo


class Command(BaseCommand):
    help = "Print the current TOTP code of the demo accounts (development only)."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("demo_totp is for development (DEBUG) only.")
        period = getattr(settings, "MFA_TOTP_PERIOD", 30)
        now = int(time.time())
        code = format_hotp_value(hotp_value(demo.DEMO_TOTP_SECRET, now // period))
        self.stdout.write(f"{code}  (valid for {period - now % period} more seconds)")
