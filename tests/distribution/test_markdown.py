"""HTML (as the catalog renders it) to Markdown for export packages."""

from catalog.text import render_rich_text
from distribution.markdown import html_to_markdown


def test_headings_emphasis_links_and_chinese_text():
    html = ('<h2>第一章：数据科学</h2><p>这是 <strong>重点</strong> 和 <em>强调</em>，'
            '见 <a href="https://alpha.test/item/x/?zc=abc&amp;utm_source=zhihu" title="课程">课程页</a>。</p>')
    assert html_to_markdown(html) == (
        "## 第一章：数据科学\n\n"
        "这是 **重点** 和 *强调*，见 [课程页](https://alpha.test/item/x/?zc=abc&utm_source=zhihu \"课程\")。\n")


def test_markdown_metacharacters_in_text_are_escaped():
    md = html_to_markdown("<p>1. not a list, 2*3*4 and snake_case [x] &lt;b&gt;</p><p># not a heading</p>")
    assert md == "1\\. not a list, 2\\*3\\*4 and snake\\_case \\[x\\] \\<b>\n\n\\# not a heading\n"


def test_a_paragraph_of_tildes_stays_text_and_opens_no_code_fence():
    md = html_to_markdown("<p>~~~</p>\n<p>Part two of the article.</p>\n<p>~~~</p>")
    assert md == "\\~~~\n\nPart two of the article.\n\n\\~~~\n"
    assert "<pre>" not in render_rich_text(md)


def test_nested_lists_stay_tight_and_ordered():
    html = "<ol><li>一<ul><li>甲</li><li>乙</li></ul></li><li>二</li></ol>"
    assert html_to_markdown(html) == "1. 一\n   - 甲\n   - 乙\n2. 二\n"


def test_quotes_code_rules_images_and_line_breaks():
    html = ("<blockquote><p>引用一</p><p>引用二<br>下一行</p></blockquote>"
            "<pre><code>x = a * b  # `tick`\n</code></pre><hr>"
            '<figure><img src="https://cdn.test/c.png" alt="封面 [1]"><figcaption>图 1</figcaption></figure>'
            '<p>H<sub>2</sub>O, <u>下划线</u>, <s>删除</s>, <abbr title="HyperText">HTML</abbr>, '
            "<code>a`b</code></p>")
    assert html_to_markdown(html) == (
        "> 引用一\n>\n> 引用二\\\n> 下一行\n\n"
        "```\nx = a * b  # `tick`\n```\n\n"
        "---\n\n"
        "![封面 \\[1\\]](https://cdn.test/c.png)\n\n*图 1*\n\n"
        "H<sub>2</sub>O, <u>下划线</u>, ~~删除~~, HTML (HyperText), ``a`b``\n")


def test_tables_become_pipe_tables():
    html = render_rich_text("| 名称 | 价格 |\n| --- | --- |\n| 入门 | ¥9 |\n| A or B | *免费* |\n")
    assert html_to_markdown(html) == "| 名称 | 价格 |\n| --- | --- |\n| 入门 | ¥9 |\n| A or B | *免费* |\n"
    assert html_to_markdown("<table><tr><td>a|b</td></tr></table>") == "| a\\|b |\n| --- |\n"


def test_rendered_markdown_round_trips_to_the_same_html():
    source = ("## 标题\n\n一段 **粗体** 文字，含 [链接](https://example.com/a_b)。\n\n"
              "- 一\n- 二\n\n> 引用\n\n1\\. 不是列表\n")
    html = render_rich_text(source)
    assert render_rich_text(html_to_markdown(html)) == html


def test_empty_input():
    assert html_to_markdown("") == ""
    assert html_to_markdown("<p> </p>") == ""
