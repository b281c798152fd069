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

# Each demo storefront's contact address and its short, generic terms of sale and privacy policy, in its language.
LEGAL = {
    "acme": {
        "contact_email": "hello@acme.demo",
        "terms": (
            "## Purchases\n\n"
            "Prices are shown before you pay. A purchase gives you personal access to the item for as long as "
            "Acme Academy offers it.\n\n"
            "## Refunds\n\n"
            "Write to us within 14 days of a purchase and we refund it in full.\n\n"
            "## Subscriptions\n\n"
            "A subscription runs by the month or the year: we email you a link to pay each renewal, and after you "
            "cancel, your access lasts until the period you paid for ends.\n"),
        "privacy_policy": (
            "We keep your name, email address, orders and learning progress to run your account and your courses, "
            "and never sell them.\n\n"
            "Payments are handled by our payment provider; we do not see your card number.\n\n"
            "Under *My data* you can download everything we hold about you or delete your account.\n"),
    },
    "lotus": {
        "contact_email": "service@lotus.demo",
        "terms": (
            "## 购买\n\n"
            "付款前页面会显示价格。购买后，您可在莲花书院提供该内容期间个人学习使用。\n\n"
            "## 退款\n\n"
            "购买后 14 天内联系我们，可全额退款。\n\n"
            "## 订阅\n\n"
            "订阅按月或按年计费：每期到期前我们会通过邮件发送续费链接；取消订阅后，已付费的周期结束前仍可继续学习。\n"),
        "privacy_policy": (
            "我们保存您的姓名、邮箱、订单和学习进度，仅用于提供账户和课程服务，绝不出售。\n\n"
            "付款由支付服务商处理，我们不会看到您的银行卡号。\n\n"
            "在“我的数据”中，您可以下载我们保存的关于您的全部信息，或注销账户。\n"),
    },
}


def people_of(slug: str) -> list[tuple[str, str, str]]:
    """(email, display name, role) of one demo tenant's people."""
    return [
        (f"owner@{slug}.demo", f"{slug.title()} Owner", "owner"),
        (f"staff@{slug}.demo", f"{slug.title()} Staff", "staff"),
        *[(f"creator{i}@{slug}.demo", f"{slug.title()} Creator {i}", "creator") for i in (1, 2)],
        *[(f"learner{i}@{slug}.demo", f"{slug.title()} Learner {i}", "learner") for i in range(1, 6)],
        (SHARED_LEARNER_EMAIL, "Demo Learner", "learner"),
    ]
