"""The demo storefronts' catalog: about ninety items a tenant of every kind, bilingual, with bundles and paths.

The plan (which items exist, their titles, prices and levels) is computed from fixed seeds before the database is
touched, so every run builds the same shop; ``seed_catalog`` then creates only what is missing (matched by slug) and
publishes new items through the editorial services, so each has version 1 and its ``ItemVersion`` row.

Media is generated here, without external tools: short WAV tone sequences stand in for lectures and e-books are
one-page PDFs. A tenant's audio, video and worksheet files are stored once and shared by name.
"""

from __future__ import annotations

import array
import io
import math
import random
import wave
from dataclasses import dataclass, field
from datetime import timedelta

from django.core.files.base import ContentFile
from django.db.models import Count
from django.utils import timezone
from django.utils.text import slugify

from catalog.models import (
    Bundle,
    Category,
    ContentItem,
    Creator,
    ItemCreator,
    LearningPath,
    Lesson,
    Level,
    PathStep,
    Review,
    Section,
    Tag,
    captions_upload_to,
    media_upload_to,
)
from catalog.services import (
    item_approve,
    item_submit,
    lesson_refresh_derived,
    progress_record,
    review_save,
)
from catalog.text import render_rich_text
from payments.models import Entitlement

from . import demo

Kind = ContentItem.Kind

# --- what the shop sells ----------------------------------------------------------------------------------------------

# (slug, English name, Chinese name, cover colour, colour in English, colour in Chinese, topics (English, Chinese))
CATEGORIES = [
    ("data-science", "Data Science", "数据科学", "#1d4ed8", "blue", "蓝色", [
        ("Machine Learning", "机器学习"), ("Statistics", "统计学"), ("SQL for Analysts", "SQL 数据查询"),
        ("Data Visualization", "数据可视化"), ("Deep Learning", "深度学习"), ("A/B Testing", "A/B 测试"),
        ("Data Cleaning", "数据清洗")]),
    ("programming", "Programming", "编程", "#6d28d9", "violet", "紫色", [
        ("Web Development", "网页开发"), ("JavaScript", "JavaScript 编程"), ("Rust", "Rust 编程"),
        ("Git and Version Control", "Git 版本控制"), ("Algorithms", "算法"), ("Django", "Django 开发"),
        ("Python Scripting", "Python 脚本编程")]),
    ("design", "Design", "设计", "#be185d", "pink", "粉色", [
        ("UI Design", "界面设计"), ("Typography", "字体排印"), ("Colour Theory", "色彩理论"),
        ("UX Research", "用户研究"), ("Figma", "Figma 设计"), ("Brand Identity", "品牌视觉")]),
    ("business", "Business", "商业", "#c2410c", "orange", "橙色", [
        ("Product Management", "产品管理"), ("Marketing", "市场营销"), ("Personal Finance", "个人理财"),
        ("Negotiation", "谈判技巧"), ("Startup Fundamentals", "创业基础"), ("Public Speaking", "公众演讲")]),
    ("languages", "Languages", "语言", "#0e7490", "teal", "青色", [
        ("Mandarin Chinese", "汉语"), ("Business English", "商务英语"), ("Japanese", "日语"),
        ("English Pronunciation", "英语发音"), ("Academic Writing", "学术写作"), ("Spanish", "西班牙语")]),
    ("music", "Music", "音乐", "#7e22ce", "purple", "紫红色", [
        ("Piano", "钢琴"), ("Guitar", "吉他"), ("Music Theory", "乐理"), ("Songwriting", "歌曲创作"),
        ("Music Production", "音乐制作"), ("Guzheng", "古筝")]),
    ("health", "Health", "健康", "#15803d", "green", "绿色", [
        ("Nutrition", "营养学"), ("Sleep Science", "睡眠科学"), ("Yoga", "瑜伽"), ("Mindfulness", "正念冥想"),
        ("Strength Training", "力量训练"), ("Traditional Chinese Medicine", "中医养生")]),
    ("history", "History", "历史", "#92400e", "brown", "棕色", [
        ("The Silk Road", "丝绸之路"), ("Tang Dynasty", "唐朝"), ("Ancient Rome", "古罗马"),
        ("The Industrial Revolution", "工业革命"), ("World War II", "第二次世界大战"),
        ("History of Science", "科学史")]),
]

# Two title formats per kind: (key, English, Chinese, levels it suits).
FORMATS = {
    Kind.COURSE: [("course", "{en}: From Zero to Practice", "{zh}：从零到实战", [Level.BEGINNER]),
                  ("mastery", "Mastering {en}", "精通{zh}", [Level.INTERMEDIATE, Level.ADVANCED])],
    Kind.ARTICLE: [("mistakes", "Five Common Mistakes in {en}", "{zh}的五个常见误区", [Level.BEGINNER]),
                   ("notes", "What I Wish I Had Known About {en}", "关于{zh}，我希望早点知道的事",
                    [Level.BEGINNER, Level.INTERMEDIATE])],
    Kind.AUDIO: [("in-20", "{en} in 20 Minutes", "二十分钟听懂{zh}", [Level.BEGINNER]),
                 ("talks", "Conversations on {en}", "{zh}漫谈", [Level.INTERMEDIATE, Level.ADVANCED])],
    Kind.VIDEO: [("walkthrough", "{en} Walkthrough", "{zh}实操演示", [Level.BEGINNER, Level.INTERMEDIATE]),
                 ("visual", "{en}: A Visual Guide", "图解{zh}", [Level.BEGINNER, Level.INTERMEDIATE])],
    Kind.EBOOK: [("handbook", "The {en} Handbook", "{zh}手册", [Level.BEGINNER, Level.INTERMEDIATE]),
                 ("field-notes", "{en} Field Notes", "{zh}实战笔记", [Level.INTERMEDIATE, Level.ADVANCED])],
    Kind.LIVE: [("live-qa", "Live Q&A: {en}", "直播答疑：{zh}", [Level.BEGINNER, Level.INTERMEDIATE]),
                ("workshop", "{en} Workshop (Live)", "{zh}直播工作坊", [Level.INTERMEDIATE])],
}
# How many generated items of each kind a tenant gets (plus the two flagship items below).
QUOTAS = {Kind.COURSE: 28, Kind.ARTICLE: 18, Kind.AUDIO: 14, Kind.VIDEO: 14, Kind.EBOOK: 10, Kind.LIVE: 5}
# Price tier weights per kind: (free, low, middle, high).
PRICE_WEIGHTS = {Kind.COURSE: (8, 0, 40, 52), Kind.ARTICLE: (50, 50, 0, 0), Kind.AUDIO: (25, 50, 25, 0),
                 Kind.VIDEO: (20, 30, 50, 0), Kind.EBOOK: (10, 50, 40, 0), Kind.LIVE: (40, 0, 60, 0)}
PRICES = {"USD": (0, 999, 1999, 4900), "CNY": (0, 990, 9900, 19900)}
# Each kind in English, and in Chinese with its measure word ("this course" is 这门课程, "this article" 这篇文章).
KIND_WORDS = {Kind.COURSE: ("course", "这门课程"), Kind.ARTICLE: ("article", "这篇文章"),
              Kind.AUDIO: ("audio lecture", "这门音频课"), Kind.VIDEO: ("video lecture", "这门视频课"),
              Kind.EBOOK: ("e-book", "这本电子书"), Kind.LIVE: ("live session", "这场直播")}

# Items every tenant has under the same slug, so browser tests and the README can point at them.
PYTHON_COURSE = "python-data-analysis"
DATA_ITEM = "data-visualization-basics"
FLAGSHIPS = [
    {"slug": PYTHON_COURSE, "kind": Kind.COURSE, "category": "data-science", "language": "en",
     "title": "Python for Data Analysis", "subtitle": "Python 数据分析：从零到实战", "en": "Python for Data Analysis",
     "topic": ("Python", "Python 数据分析"), "level": Level.BEGINNER, "tier": 3, "featured": True},
    {"slug": DATA_ITEM, "kind": Kind.VIDEO, "category": "data-science", "language": "zh-hans",
     "title": "数据可视化入门", "subtitle": "Data Visualization Basics", "en": "Data Visualization Basics",
     "topic": ("Data Visualization", "数据可视化"), "level": Level.BEGINNER, "tier": 0, "featured": True},
]

# (slug, English name, Chinese name, English headline, Chinese headline); creator1/creator2 sign in, the rest do not.
CREATORS = {
    "acme": [("maya-chen", "Maya Chen", "陈玛雅", "Data scientist and patient teacher", "数据科学家，耐心的老师"),
             ("daniel-okafor", "Daniel Okafor", "丹尼尔·奥卡福", "Designer who codes", "会写代码的设计师"),
             ("priya-raman", "Priya Raman", "普丽娅·拉曼", "Former product lead, now writing",
              "前产品负责人，现专职写作"),
             ("lukas-brandt", "Lukas Brandt", "卢卡斯·勃兰特", "Pianist and music producer", "钢琴家、音乐制作人"),
             ("sofia-alvarez", "Sofia Alvarez", "索菲亚·阿尔瓦雷斯", "Historian and health writer",
              "历史学者、健康作家")],
    "lotus": [("lin-xiaoyu", "林晓雨 Lin Xiaoyu", "林晓雨", "Data engineer and author", "数据工程师、作者"),
              ("wang-haoran", "王浩然 Wang Haoran", "王浩然", "Full-stack developer", "全栈工程师"),
              ("chen-jing", "陈静 Chen Jing", "陈静", "Brand designer", "品牌设计师"),
              ("zhao-ming", "赵明 Zhao Ming", "赵明", "Guzheng player and music teacher", "古筝演奏家、音乐教师"),
              ("emily-carter", "Emily Carter", "艾米莉·卡特", "Language coach", "语言教练")],
}
# Which creator (index above) leads each category.
LEAD_CREATOR = {"data-science": 0, "programming": 1, "design": 1, "business": 2, "languages": 4, "music": 3,
                "health": 4, "history": 2}

TAGS = {
    "data-science": [("python", "python"), ("statistics", "统计"), ("machine learning", "机器学习")],
    "programming": [("python", "python"), ("web", "网页"), ("career", "职业发展")],
    "design": [("ui", "界面"), ("portfolio", "作品集"), ("figma", "figma")],
    "business": [("career", "职业发展"), ("startups", "创业"), ("money", "理财")],
    "languages": [("speaking", "口语"), ("exam prep", "备考"), ("grammar", "语法")],
    "music": [("practice", "练习"), ("instruments", "乐器"), ("theory", "乐理")],
    "health": [("wellbeing", "身心健康"), ("habits", "习惯"), ("fitness", "健身")],
    "history": [("china", "中国"), ("europe", "欧洲"), ("storytelling", "故事")],
}


@dataclass
class PlannedItem:
    slug: str
    kind: str
    category: str
    language: str
    title: str
    subtitle: str
    title_en: str  # drawn on the cover and printed in PDFs, whose default fonts have no Chinese glyphs
    topic: tuple[str, str]
    level: str
    tier: int
    featured: bool = False
    extra_tags: list[str] = field(default_factory=list)


def plan_catalog(tenant_slug: str, primary: str) -> list[PlannedItem]:
    """The tenant's items, the same on every run: mostly in its ``primary`` language, about 15% in the other."""
    rng = random.Random(tenant_slug)
    other = "zh-hans" if primary == "en" else "en"
    topics = [(cat[0], en, zh) for cat in CATEGORIES for en, zh in cat[6]]
    plan = [PlannedItem(slug=f["slug"], kind=f["kind"], category=f["category"], language=f["language"],
                        title=f["title"], subtitle=f["subtitle"], title_en=f["en"], topic=f["topic"],
                        level=f["level"], tier=f["tier"], featured=f["featured"]) for f in FLAGSHIPS]
    for kind, quota in QUOTAS.items():
        for category, en, zh in rng.sample(topics, quota):
            key, title_en, title_zh, levels = rng.choice(FORMATS[kind])
            # "The {en} Handbook" of "The Silk Road" is "The Silk Road Handbook".
            title_en, title_zh = title_en.format(en=en).replace("The The ", "The "), title_zh.format(zh=zh)
            language = other if rng.random() < 0.15 else primary
            title, subtitle = (title_en, title_zh) if language == "en" else (title_zh, title_en)
            tier = rng.choices(range(4), weights=PRICE_WEIGHTS[kind])[0]
            plan.append(PlannedItem(slug=f"{slugify(en)}-{key}", kind=kind, category=category, language=language,
                                    title=title, subtitle=subtitle, title_en=title_en, topic=(en, zh),
                                    level=rng.choice(levels), tier=tier, featured=rng.random() < 0.07))
    return plan


# --- words ------------------------------------------------------------------------------------------------------------

EN_HOOKS = [
    "{topic} looks harder from the outside than it is.",
    "Most people meet {topic} in scattered pieces; this puts them in order.",
    "Anyone curious can get to grips with {topic}.",
    "Everyone has an opinion about {topic}; few can explain it clearly.",
    "A little structure goes a long way with {topic}.",
]
EN_PROMISES = [
    "takes you from the first principles to work you can show to others",
    "replaces vague advice with worked examples and honest trade-offs",
    "gives you a map of the field and the confidence to explore it on your own",
    "focuses on the twenty percent of {topic} that you will use every week",
]
EN_POINTS = [
    "The core vocabulary of {topic}, explained in plain words",
    "A repeatable routine for practising {topic} in 30 minutes a day",
    "How professionals decide what to do first",
    "Three worked examples you can adapt to your own projects",
    "The mistakes beginners make, and how to notice them early",
    "Where to go next once the basics feel comfortable",
    "A checklist to review your own work",
]
EN_AUDIENCE = {
    Level.BEGINNER: "It is written for complete beginners: no prior experience is assumed.",
    Level.INTERMEDIATE: "It suits learners who know the basics and want to become fluent and efficient.",
    Level.ADVANCED: "It is meant for experienced practitioners who want depth, nuance and edge cases.",
}
ZH_HOOKS = [
    "{topic}其实没有看上去那么难。",
    "很多人对{topic}的了解是零散的，这里帮你理出头绪。",
    "只要有好奇心，谁都能入门{topic}。",
    "人人都能聊几句{topic}，但能讲清楚的人不多。",
    "学{topic}，有一点章法就能事半功倍。",
]
ZH_PROMISES = [
    "从最基本的原理讲起，带你做出可以展示给别人的成果",
    "用真实案例和坦诚的取舍，代替空泛的建议",
    "为你画出这个领域的地图，让你有信心独立探索",
    "专注于你每周都会用到的那百分之二十的{topic}知识",
]
ZH_POINTS = [
    "用通俗的语言讲清{topic}的核心概念",
    "每天三十分钟、可以坚持下去的{topic}练习方法",
    "专业人士如何判断先做什么",
    "三个可以直接套用到自己项目里的完整案例",
    "初学者最常犯的错误，以及如何尽早发现",
    "打好基础之后，下一步该往哪里走",
    "一份用来检查自己作品的清单",
]
ZH_AUDIENCE = {
    Level.BEGINNER: "本内容面向零基础的初学者，不需要任何先修知识。",
    Level.INTERMEDIATE: "适合已经掌握基础、希望更熟练高效的学习者。",
    Level.ADVANCED: "面向有经验的从业者，深入讨论细节、权衡与边界情况。",
}
EN_SECTIONS = ["Getting started", "Core ideas", "Hands-on practice", "Going further"]
ZH_SECTIONS = ["入门准备", "核心概念", "动手实践", "进阶提升"]
EN_LESSONS = ["Why {topic} matters", "Setting up your toolkit", "A first worked example", "Key terms, explained",
              "Common pitfalls", "Practice exercise", "Reading the results", "A real-world case study",
              "Building your own project", "Checklist and next steps", "Questions learners ask most",
              "Putting it all together", "Tools professionals use", "Review and quiz"]
ZH_LESSONS = ["为什么要学{topic}", "准备你的工具", "第一个完整示例", "关键术语解读", "常见陷阱", "练习题",
              "如何解读结果", "真实案例分析", "动手做一个小项目", "清单与下一步", "学员最常问的问题", "融会贯通",
              "专业人士的工具箱", "复习与小测验"]
EN_REVIEWS = ["Clear, practical and well paced.", "Exactly what I needed to get unstuck.",
              "Good examples; I would have liked a few more exercises.", "The best introduction I have found.",
              "Solid material, a little slow in the middle."]
ZH_REVIEWS = ["讲得清楚又实用，节奏刚好。", "正是我需要的，终于搞懂了。", "例子很好，希望练习再多一点。",
              "我看过最好的入门内容。", "内容扎实，中间部分稍慢。"]


def _description(item: PlannedItem, rng: random.Random) -> str:
    en, zh = item.topic
    if item.language == "en":
        kind_word = KIND_WORDS[item.kind][0]
        points = "\n".join(f"- {p.format(topic=en)}" for p in rng.sample(EN_POINTS, rng.randint(3, 5)))
        return (f"{rng.choice(EN_HOOKS).format(topic=en)} This {kind_word} "
                f"{rng.choice(EN_PROMISES).format(topic=en)}.\n\n"
                f"**What you will take away**\n\n{points}\n\n{EN_AUDIENCE[item.level]} "
                f"Each part ends with a short exercise, so you can check your understanding as you go.\n\n"
                f"*{item.subtitle}*")
    kind_word = KIND_WORDS[item.kind][1]
    points = "\n".join(f"- {p.format(topic=zh)}" for p in rng.sample(ZH_POINTS, rng.randint(3, 5)))
    return (f"{rng.choice(ZH_HOOKS).format(topic=zh)}{kind_word}"
            f"{rng.choice(ZH_PROMISES).format(topic=zh)}。\n\n"
            f"**你将收获**\n\n{points}\n\n{ZH_AUDIENCE[item.level]}每个部分都配有小练习，帮你随时检验学习效果。\n\n"
            f"*{item.subtitle}*")


def _body(item: PlannedItem, rng: random.Random) -> str:
    """Article text, lecture notes, an e-book's contents or a live session's agenda."""
    en, zh = item.topic
    english = item.language == "en"
    topic = en if english else zh
    if item.kind == Kind.ARTICLE:
        pattern = EN_POINTS if english else ZH_POINTS
        parts = [f"## {p.format(topic=topic)}\n\n" + (
            f"When people start with {en}, this is where they lose the most time. Slow down, write down what you "
            "expect to happen, and compare it with what actually happens." if english else
            f"刚开始接触{zh}时，大家最容易在这里浪费时间。放慢速度，先写下你的预期，再和实际结果对比。")
            for p in rng.sample(pattern, 3)]
        return "\n\n".join(parts)
    if item.kind == Kind.EBOOK:
        chapters = rng.sample(EN_LESSONS if english else ZH_LESSONS, 6)
        heading = "Contents" if english else "目录"
        return f"## {heading}\n\n" + "\n".join(f"{i}. {c.format(topic=topic)}" for i, c in enumerate(chapters, 1))
    if item.kind == Kind.LIVE:
        heading = "Agenda" if english else "议程"
        agenda = (["Welcome and introductions", f"Live demo: {en} in practice", "Your questions, answered"]
                  if english else ["开场与介绍", f"现场演示：{zh}实战", "现场答疑"])
        return f"## {heading}\n\n" + "\n".join(f"- {a}" for a in agenda)
    heading = "Notes" if english else "笔记"
    return f"## {heading}\n\n" + "\n".join(
        f"- {p.format(topic=topic)}" for p in rng.sample(EN_POINTS if english else ZH_POINTS, 3))


# --- generated media --------------------------------------------------------------------------------------------------

DEMO_CAPTIONS = {
    "en": ["Welcome to the course.", "In this lesson we see why it matters.", "Follow along with the notes below.",
           "See you in the next lesson."],
    "zh-hans": ["欢迎来到本课程。", "这一节我们来看它为什么重要。", "请对照下面的笔记学习。", "我们下一节见。"],
}


def webvtt_bytes(lines: list[str], *, seconds: float = 16.0) -> bytes:
    """WebVTT captions showing ``lines`` in turn over ``seconds`` (the demo video's length)."""
    step = seconds / len(lines)

    def stamp(t: float) -> str:
        return f"00:{int(t) // 60:02d}:{int(t) % 60:02d}.{round(t % 1 * 1000):03d}"

    cues = [f"{stamp(i * step)} --> {stamp((i + 1) * step)}\n{line}" for i, line in enumerate(lines)]
    return ("WEBVTT\n\n" + "\n\n".join(cues) + "\n").encode()


def wav_bytes(notes: list[float], *, seconds: float = 12.0, rate: int = 8000) -> bytes:
    """A mono 16-bit WAV playing ``notes`` (Hz) in turn, each faded in and out so it does not click."""
    per_note = int(seconds * rate / len(notes))
    fade = rate // 40
    samples = array.array("h")
    for frequency in notes:
        step = 2 * math.pi * frequency / rate
        for i in range(per_note):
            envelope = min(1.0, i / fade, (per_note - i) / fade)
            samples.append(int(9000 * envelope * math.sin(step * i)))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()


def pdf_bytes(title: str, lines: list[str]) -> bytes:
    """A one-page A4 PDF in Helvetica (Latin text only): ``title`` large, then ``lines``."""

    def text(value: str) -> str:
        value = value.encode("latin-1", "replace").decode("latin-1")
        return value.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    stream = f"BT /F1 20 Tf 60 770 Td ({text(title)}) Tj ET\n"
    for index, line in enumerate(lines):
        stream += f"BT /F1 12 Tf 60 {730 - 20 * index} Td ({text(line)}) Tj ET\n"
    content = stream.encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> "
        b"/Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"endstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


SMALL_WORDS = {"a", "an", "and", "for", "in", "of", "on", "the", "to"}


def cover_png(title_en: str, colour: str, kind: str, rng: random.Random) -> bytes:
    """A 640x360 cover: the category's colour, a simple pattern, the English title's initials and the kind."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (640, 360), colour)
    draw = ImageDraw.Draw(image)
    pattern = rng.randrange(3)
    for i in range(6):
        if pattern == 0:
            r = 40 + 30 * i
            draw.ellipse((520 - r, 60 - r, 520 + r, 60 + r), outline="#ffffff", width=3)
        elif pattern == 1:
            draw.line((i * 90 - 120, 360, i * 90 + 240, 0), fill="#ffffff", width=14)
        else:
            x, y = rng.randrange(360, 600), rng.randrange(20, 300)
            draw.rectangle((x, y, x + 50, y + 50), outline="#ffffff", width=4)
    words = [w for w in title_en.replace(":", " ").split() if w[0].isalnum() and w.lower() not in SMALL_WORDS]
    initials = "".join(word[0] for word in words)[:3].upper()
    draw.text((48, 150), initials, fill="#ffffff", font_size=110)
    draw.text((52, 300), KIND_WORDS[kind][0].upper(), fill="#ffffff", font_size=24)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)  # flat colours compress well anyway; this keeps seeding fast
    return buffer.getvalue()


# --- building it ------------------------------------------------------------------------------------------------------

class _CatalogBuilder:
    def __init__(self, *, tenant, actor, people: dict):
        self.tenant, self.actor, self.people = tenant, actor, people
        self.currency = PRICES.get(tenant.currency, PRICES["USD"])
        self.primary = "en" if tenant.default_language == "en" else "zh-hans"
        self.now = timezone.now().replace(minute=0, second=0, microsecond=0)
        self.media_names: dict[str, str] = {}
        self.counts = {"items_created": 0, "lessons_created": 0}
        self._tags: dict[str, Tag] = {}

    def zh(self) -> bool:
        return self.primary == "zh-hans"

    def stored_media(self, filename: str, make, upload_to=media_upload_to) -> str:
        """The name of a tenant's shared demo media file in private storage, written the first time it is needed."""
        if filename not in self.media_names:
            # The storage the media (and captions) fields read from (the private one, resolved when the models
            # loaded).
            storage = ContentItem._meta.get_field("media").storage
            name = upload_to(ContentItem(tenant=self.tenant), f"demo-{filename}")
            if not storage.exists(name):
                name = storage.save(name, ContentFile(make()))
            self.media_names[filename] = name
        return self.media_names[filename]

    def audio(self) -> str:
        return self.stored_media("lecture-audio.wav", lambda: wav_bytes([261.63, 329.63, 392.0, 523.25] * 3))

    def video(self) -> str:
        # There is no video encoder here: a video's media is its WAV audio track, which browsers play in <video>.
        return self.stored_media("lecture-video.wav", lambda: wav_bytes([220.0, 277.18, 329.63, 440.0] * 3,
                                                                         seconds=16.0))

    def video_captions(self, language: str) -> str:
        return self.stored_media(f"lecture-video.{language}.vtt", lambda: webvtt_bytes(DEMO_CAPTIONS[language]),
                                 upload_to=captions_upload_to)

    def latin_name(self) -> str:
        return self.tenant.name.encode("ascii", "ignore").decode().strip()

    def worksheet(self) -> str:
        return self.stored_media("worksheet.pdf", lambda: pdf_bytes(
            f"{self.latin_name()}: worksheet",
            ["Exercises for this lesson.", "Print it, or fill it in on screen."]))

    # Reference rows -----------------------------------------------------------------------------------------------

    def categories(self) -> dict[str, Category]:
        found = {}
        for position, (slug, en, zh, *_rest) in enumerate(CATEGORIES):
            category, _ = Category.objects.update_or_create(
                slug=slug, defaults={"name": zh if self.zh() else en, "position": position, "tenant": self.tenant})
            found[slug] = category
        return found

    def creators(self) -> list[Creator]:
        rows = []
        users = [self.people.get(f"creator{i}@{self.tenant.slug}.demo") for i in (1, 2)]
        specs = CREATORS.get(self.tenant.slug, CREATORS["acme"])
        for index, (slug, name, name_zh, headline, headline_zh) in enumerate(specs):
            user = users[index] if index < len(users) else None
            bio = (f"{name_zh}已在线上教过数千名学员。{headline_zh}。" if self.zh()
                   else f"{name} has taught thousands of learners online. {headline}.")
            creator, _ = Creator.objects.update_or_create(slug=slug, defaults={
                "tenant": self.tenant, "user": user, "name": name,
                "headline": headline_zh if self.zh() else headline, "bio": bio})
            rows.append(creator)
        return rows

    def tag(self, name: str) -> Tag:
        if name not in self._tags:
            self._tags[name], _ = Tag.objects.get_or_create(name=name, defaults={"tenant": self.tenant})
        return self._tags[name]

    # Items ----------------------------------------------------------------------------------------------------------

    def build(self, plan: list[PlannedItem]) -> dict[str, ContentItem]:
        categories = self.categories()
        creators = self.creators()
        existing = {item.slug: item for item in ContentItem.objects.filter(slug__in=[p.slug for p in plan])}
        live_index = 0
        for planned in plan:
            if planned.kind == Kind.LIVE:
                live_index += 1
            if planned.slug in existing:
                continue
            existing[planned.slug] = self.create_item(planned, categories, creators, live_index)
        return existing

    def create_item(self, planned: PlannedItem, categories, creators, live_index: int) -> ContentItem:
        rng = random.Random(f"{self.tenant.slug}:{planned.slug}")
        spec = next(c for c in CATEGORIES if c[0] == planned.category)
        colour_name = spec[4] if planned.language == "en" else spec[5]
        item = ContentItem(
            tenant=self.tenant, kind=planned.kind, slug=planned.slug, title=planned.title, subtitle=planned.subtitle,
            language=planned.language, level=planned.level, price=self.currency[planned.tier],
            is_featured=planned.featured, description=_description(planned, rng), created_by=self.actor,
            cover_alt=(f"A {colour_name} cover with a geometric pattern and the letters of “{planned.title_en}”"
                       if planned.language == "en" else f"{colour_name}封面，几何图案与《{planned.title_en}》的首字母"),
        )
        if planned.kind != Kind.COURSE:
            item.body = _body(planned, rng)
        item.duration_minutes = {Kind.ARTICLE: rng.randint(5, 15), Kind.AUDIO: rng.randint(15, 45),
                                 Kind.VIDEO: rng.randint(12, 60), Kind.EBOOK: rng.randint(90, 240),
                                 Kind.LIVE: rng.choice([60, 90])}.get(planned.kind, 0)
        if planned.kind == Kind.AUDIO:
            item.media = self.audio()
        elif planned.kind == Kind.VIDEO:
            item.media = self.video()
        elif planned.kind == Kind.EBOOK:
            item.media = self.stored_media(f"{planned.slug}.pdf", lambda: pdf_bytes(planned.title_en, [
                self.latin_name(), planned.topic[0],
                "A demo e-book: one page long, so it downloads instantly."]))
        elif planned.kind == Kind.LIVE:
            if live_index == 1:  # the one that already happened, with its replay
                item.starts_at = self.now - timedelta(days=10)
                item.media = self.video()
            else:
                item.starts_at = (self.now + timedelta(days=live_index * 2 - 3)).replace(hour=12)
            item.join_url = f"https://meet.example.com/{self.tenant.slug}-{planned.slug}"
        item.cover.save(f"{planned.slug}.png", ContentFile(cover_png(planned.title_en, spec[3], planned.kind, rng)),
                        save=False)
        item.save()
        item.categories.set([categories[planned.category]])
        tag_names = [t[1] if planned.language == "zh-hans" else t[0] for t in rng.sample(TAGS[planned.category], 2)]
        item.tags.set([self.tag(name) for name in tag_names])
        lead = creators[LEAD_CREATOR[planned.category]] if planned.slug != PYTHON_COURSE else creators[0]
        credits = [(lead, 7000)]
        if rng.random() < 0.3:
            partner = rng.choice([c for c in creators if c != lead])
            credits = [(lead, 4000), (partner, 3000)]
        ItemCreator.objects.bulk_create([ItemCreator(tenant=self.tenant, item=item, creator=creator, share_bp=share,
                                                     position=position)
                                         for position, (creator, share) in enumerate(credits)])
        if planned.kind == Kind.COURSE:
            item.duration_minutes = self.create_lessons(item, planned, rng)
            item.save(update_fields=["duration_minutes"])
        # Publishing renders the description and rebuilds the search text (categories, tags, creators are set now).
        item = item_submit(item=item, actor=self.actor)
        item = item_approve(item=item, actor=self.actor)
        self.counts["items_created"] += 1
        return item

    def create_lessons(self, item: ContentItem, planned: PlannedItem, rng: random.Random) -> int:
        """Sections and lessons of a course; the first lesson is a free preview. Returns the minutes in total."""
        english = planned.language == "en"
        topic = planned.topic[0] if english else planned.topic[1]
        section_titles = EN_SECTIONS if english else ZH_SECTIONS
        titles = EN_LESSONS if english else ZH_LESSONS
        lesson_titles = titles[:1] + rng.sample(titles[1:], len(titles) - 1)  # "why it matters" opens every course
        lessons, seconds = [], 0
        for position in range(rng.randint(2, 4)):
            section = Section.objects.create(tenant=self.tenant, item=item, title=section_titles[position],
                                             position=position)
            for lesson_position in range(rng.randint(2, 3 if position else 5)):
                first = not lessons
                if first:
                    kind = Lesson.Kind.VIDEO if planned.slug == PYTHON_COURSE else rng.choice(
                        [Lesson.Kind.VIDEO, Lesson.Kind.AUDIO, Lesson.Kind.TEXT])
                else:
                    kind = rng.choices(list(Lesson.Kind), weights=[4, 4, 2, 1])[0]
                title = lesson_titles[len(lessons)].format(topic=topic)
                lesson = Lesson(tenant=self.tenant, item=item, section=section, title=title, kind=kind,
                                is_preview=first, position=lesson_position,
                                duration_seconds=rng.randint(4, 18) * 60 if kind != Lesson.Kind.FILE else 0)
                if kind == Lesson.Kind.TEXT:
                    points = rng.sample(EN_POINTS if english else ZH_POINTS, 3)
                    lesson.body = (f"## {title}\n\n" + (
                        f"In this lesson we look at {topic} from a practical angle." if english
                        else f"这一节我们从实践的角度来看{topic}。") + "\n\n"
                        + "\n".join(f"- {p.format(topic=topic)}" for p in points))
                else:
                    lesson.body = (f"Notes for “{title}”." if english else f"《{title}》课堂笔记。")
                    lesson.media = {Lesson.Kind.VIDEO: self.video, Lesson.Kind.AUDIO: self.audio}.get(
                        kind, self.worksheet)()
                    if first and planned.slug == PYTHON_COURSE:  # the free preview everyone can play
                        language = "en" if english else "zh-hans"
                        lesson.captions = self.video_captions(language)
                        lesson.transcript = "\n\n".join(DEMO_CAPTIONS[language])
                lesson_refresh_derived(lesson=lesson)
                lessons.append(lesson)
                seconds += lesson.duration_seconds
        Lesson.objects.bulk_create(lessons)
        self.counts["lessons_created"] += len(lessons)
        return max(1, round(seconds / 60))

    # Around the items -----------------------------------------------------------------------------------------------

    def prerequisites(self, items: dict[str, ContentItem], plan: list[PlannedItem]) -> None:
        """Within a category, the beginners' course comes before its advanced items."""
        for category in CATEGORIES:
            courses = [p for p in plan if p.category == category[0] and p.kind == Kind.COURSE]
            first = next((p for p in courses if p.level == Level.BEGINNER), None)
            if first is None:
                continue
            for later in [p for p in courses if p.level == Level.ADVANCED][:2]:
                items[later.slug].prerequisites.add(items[first.slug])
        if "machine-learning-mastery" in items:
            items["machine-learning-mastery"].prerequisites.add(items[PYTHON_COURSE])

    def bundles(self, items: dict[str, ContentItem], plan: list[PlannedItem]) -> list[Bundle]:
        rng = random.Random(f"{self.tenant.slug}:bundles")
        bundles = []
        for slug, categories, size, en, zh in [
            ("data-starter-pack", ("data-science", "programming"), 4, "Data Starter Pack", "数据入门套装"),
            ("creative-toolkit", ("design", "music"), 3, "Creative Toolkit", "创意工具箱"),
        ]:
            chosen = [items[p.slug] for p in plan if p.category in categories and self.currency[p.tier] > 0][:size]
            total = sum(i.price for i in chosen)
            # About 30% off, ending in 99 (USD) or 900 (CNY) like a real price tag.
            unit = 100 if self.currency[-1] < 10000 else 1000
            price = max(unit, int(total * 0.7) // unit * unit - (1 if unit == 100 else 100))
            title, other = (zh, en) if self.zh() else (en, zh)
            saved = (total - price) * 100 // total  # said as it is, rounded down
            lead = (f"{len(chosen)} 件内容，比单独购买省 {saved}%。" if self.zh()
                    else f"{len(chosen)} items, {saved}% less than buying them one by one.")
            description = f"{lead}\n\n" + "\n".join(f"- {i.title}" for i in chosen) + f"\n\n*{other}*"
            bundle, created = Bundle.objects.update_or_create(slug=slug, defaults={
                "tenant": self.tenant, "title": title, "description": description,
                "description_html": render_rich_text(description), "price": price, "is_published": True})
            if created or not bundle.cover:
                bundle.cover.save(f"bundle-{slug}.png", ContentFile(cover_png(en, "#334155", Kind.COURSE, rng)))
            bundle.items.set(chosen)
            bundles.append(bundle)
        return bundles

    def paths(self, items: dict[str, ContentItem], plan: list[PlannedItem]) -> list[LearningPath]:
        paths = []
        order = {Level.BEGINNER: 0, Level.INTERMEDIATE: 1, Level.ADVANCED: 2}
        for slug, categories, en, zh in [("data-science-from-scratch", ("data-science",), "Data Science from Scratch",
                                          "从零开始学数据科学"),
                                         ("design-foundations", ("design",), "Design Foundations", "设计入门之路")]:
            candidates = sorted((p for p in plan if p.category in categories and p.kind != Kind.LIVE),
                                key=lambda p: (p.slug != PYTHON_COURSE, order[p.level], p.kind != Kind.COURSE))
            steps = []
            for level in (Level.BEGINNER, Level.INTERMEDIATE, Level.ADVANCED):
                steps += [p for p in candidates if p.level == level][:2]
            steps += [p for p in candidates if p not in steps][:max(0, 5 - len(steps))]
            steps = sorted(steps, key=lambda p: order[p.level])
            title, other = (zh, en) if self.zh() else (en, zh)
            description = (f"{len(steps)} steps from your first lesson to advanced work. *{other}*" if not self.zh()
                           else f"{len(steps)} 步，从第一课走到进阶。*{other}*")
            path, _ = LearningPath.objects.update_or_create(slug=slug, defaults={
                "tenant": self.tenant, "title": title, "description": description,
                "description_html": render_rich_text(description), "is_published": True})
            notes = ({Level.BEGINNER: "Start here: the foundations.", Level.INTERMEDIATE: "Build fluency.",
                      Level.ADVANCED: "Go deep once the basics are second nature."} if not self.zh() else
                     {Level.BEGINNER: "从这里开始：打好基础。", Level.INTERMEDIATE: "熟能生巧。",
                      Level.ADVANCED: "基础扎实之后，再深入钻研。"})
            kept = []
            for position, planned in enumerate(steps):
                step, _ = PathStep.objects.update_or_create(path=path, item=items[planned.slug], defaults={
                    "tenant": self.tenant, "position": position, "note": notes[planned.level]})
                kept.append(step.pk)
            PathStep.objects.filter(path=path).exclude(pk__in=kept).delete()
            paths.append(path)
        return paths

    def learners(self, items: dict[str, ContentItem], plan: list[PlannedItem], bundle: Bundle) -> int:
        """Grants, progress and reviews for the demo learners, so "My learning" and ratings are not empty."""
        shared = self.people[demo.SHARED_LEARNER_EMAIL]
        first = self.people[f"learner1@{self.tenant.slug}.demo"]
        paid = [p for p in plan if self.currency[p.tier] > 0 and p.slug != PYTHON_COURSE]
        course = items[next(p.slug for p in paid if p.kind == Kind.COURSE)]
        audio = items[next(p.slug for p in paid if p.kind == Kind.AUDIO)]
        ebook = items[next(p.slug for p in paid if p.kind == Kind.EBOOK)]
        for user, granted in ((shared, [course, audio]), (first, [audio, ebook])):
            for item in granted:
                Entitlement.objects.get_or_create(user=user, item=item, source=Entitlement.Source.GRANT,
                                                  reference="demo",
                                                  defaults={"tenant": self.tenant, "starts_at": timezone.now()})
            Entitlement.objects.get_or_create(user=user, bundle=bundle, source=Entitlement.Source.GRANT,
                                              reference="demo",
                                              defaults={"tenant": self.tenant, "starts_at": timezone.now()})
        lessons = list(course.lessons.all())
        for lesson in lessons[:2]:
            progress_record(user=shared, item=course, lesson=lesson, position_seconds=lesson.duration_seconds,
                            completed=True)
        if len(lessons) > 2:
            progress_record(user=shared, item=course, lesson=lessons[2], position_seconds=95)
        progress_record(user=shared, item=audio, position_seconds=300)
        progress_record(user=first, item=audio, position_seconds=audio.duration_minutes * 60, completed=True)
        progress_record(user=first, item=ebook)

        rng = random.Random(f"{self.tenant.slug}:reviews")
        reviewers = [self.people[f"learner{i}@{self.tenant.slug}.demo"] for i in range(1, 6)]
        free = [items[p.slug] for p in plan if self.currency[p.tier] == 0][:14]
        reviewed = [(user, item) for item in free for user in rng.sample(reviewers, rng.randint(1, 4))]
        reviewed += [(shared, course), (first, audio)]
        # A rerun leaves the reviews it wrote (saving one again would count the rating twice as behaviour) and
        # those of items the team has archived since.
        written = set(Review.objects.values_list("user_id", "item_id"))
        for user, item in reviewed:
            words = EN_REVIEWS if item.language == "en" else ZH_REVIEWS
            rating, body = rng.choices([5, 4, 3], weights=[5, 4, 1])[0], rng.choice(words)
            if (user.pk, item.pk) not in written and item.status == ContentItem.Status.PUBLISHED:
                review_save(user=user, item=item, rating=rating, body=body)
        return len(reviewed)

    def learner_counts(self, items: dict[str, ContentItem], plan: list[PlannedItem]) -> None:
        """Give the "popular" sort something to sort by.

        ``learner_count`` is a derived counter that ``progress_record`` keeps; a demo shop has no history, so it is
        set directly here to a fixed, plausible audience plus the real progress rows (which keeps reruns stable).
        """
        real = dict(ContentItem.objects.filter(pk__in=[i.pk for i in items.values()])
                    .annotate(n=Count("progress")).values_list("pk", "n"))
        for planned in plan:
            rng = random.Random(f"{self.tenant.slug}:{planned.slug}:learners")
            base = rng.lognormvariate(4.5, 1.0) * (3 if planned.featured else 1) * (2 if planned.tier == 0 else 1)
            item = items[planned.slug]
            ContentItem.objects.filter(pk=item.pk).update(learner_count=min(int(base), 25000) + real.get(item.pk, 0))


def seed_catalog(*, tenant, actor, people: dict) -> dict:
    """Build the tenant's demo catalog, creating only what is missing; returns what the tenant now has.

    ``people`` maps the tenant's demo email addresses to users. Runs inside the tenant's scope (``seed_demo``).
    """
    builder = _CatalogBuilder(tenant=tenant, actor=actor, people=people)
    plan = plan_catalog(tenant.slug, "en" if tenant.default_language == "en" else "zh-hans")
    items = builder.build(plan)
    builder.prerequisites(items, plan)
    bundles = builder.bundles(items, plan)
    builder.paths(items, plan)
    reviews = builder.learners(items, plan, bundles[0])
    builder.learner_counts(items, plan)
    published = ContentItem.objects.filter(status=ContentItem.Status.PUBLISHED)
    return {
        "items": published.count(),
        "by_kind": dict(published.order_by().values_list("kind").annotate(n=Count("id"))),
        "by_language": dict(published.order_by().values_list("language").annotate(n=Count("id"))),
        "lessons": Lesson.objects.count(),
        "bundles": Bundle.objects.filter(is_published=True).count(),
        "paths": LearningPath.objects.filter(is_published=True).count(),
        "reviews": reviews,
        **builder.counts,
    }
