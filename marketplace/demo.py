"""The demo world that ``seed_demo`` builds: who and what, in one place, so the README and tests agree."""

DEMO_PASSWORD = "zhiku-demo-2026"
# Every demo account that must use MFA shares this TOTP secret (base32); `manage.py demo_totp` prints its code.
DEMO_TOTP_SECRET = "JBSWY3DPEHPK3PXPZHIKUDEMOSTAFFAA"
OPERATOR_EMAIL = "operator@zhiku.demo"
SHARED_LEARNER_EMAIL = "learner@zhiku.demo"

TENANTS = [
    {
        "slug": "acme", "name": "Acme Academy", "primary_color": "#0f766e", "default_language": "en",
        "currency": "USD", "time_zone": "America/New_York", "hosts": ["acme.localhost", "learn-acme.localhost"],
    },
    {
        "slug": "lotus", "name": "莲花书院 Lotus Academy", "primary_color": "#be123c", "default_language": "zh-hans",
        "currency": "CNY", "time_zone": "Asia/Shanghai", "hosts": ["lotus.localhost"],
    },
]


def people_of(slug: str) -> list[tuple[str, str, str]]:
    """(email, display name, role) of one demo tenant's people."""
    return [
        (f"owner@{slug}.demo", f"{slug.title()} Owner", "owner"),
        (f"staff@{slug}.demo", f"{slug.title()} Staff", "staff"),
        *[(f"creator{i}@{slug}.demo", f"{slug.title()} Creator {i}", "creator") for i in (1, 2)],
        *[(f"learner{i}@{slug}.demo", f"{slug.title()} Learner {i}", "learner") for i in range(1, 6)],
        (SHARED_LEARNER_EMAIL, "Demo Learner", "learner"),
    ]
