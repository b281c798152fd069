"""On a free preview, "next" leads someone without the item to what they can open: the next free preview, or the
item's page to get it; a learner who has it goes through every lesson in order."""

import re

import pytest
from django_scopes import scope

from tests.conftest import host_client
from tests.factories import catalog_item, grant, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def course(tenant_a):
    course = catalog_item(tenant_a, title="Paid Course", kind="course", price=4900, lessons=4)
    with scope(tenant=tenant_a):
        lessons = list(course.lessons.order_by("position"))
        for lesson in (lessons[0], lessons[2]):  # previews: lessons 1 and 3; lessons 2 and 4 are locked
            lesson.is_preview = True
            lesson.save(update_fields=["is_preview"])
    return course, lessons


def navigation(client, course, lesson) -> str:
    response = client.get(f"/item/{course.slug}/lesson/{lesson.pk}/")
    assert response.status_code == 200
    page = response.content.decode()
    return re.search(r'<nav class="prev-next".*?</nav>', page, re.S).group()


@pytest.mark.parametrize("signed_in", [False, True])
def test_without_the_item_next_skips_locked_lessons_then_offers_the_item(tenant_a, course, signed_in):
    course, (one, two, three, four) = course
    client = host_client("alpha.test", member(tenant_a) if signed_in else None)

    nav = navigation(client, course, one)
    assert f'href="/item/{course.slug}/lesson/{three.pk}/">Lesson 3 →' in nav
    assert f"/lesson/{two.pk}/" not in nav

    nav = navigation(client, course, three)
    assert f"/lesson/{four.pk}/" not in nav and f"/lesson/{two.pk}/" not in nav
    assert f'href="/item/{course.slug}/lesson/{one.pk}/">← Lesson 1' in nav  # back to the preview before it
    assert "The next lessons are for learners who own this item." in nav
    assert re.search(rf'<a class="button" href="/item/{course.slug}/">Get it for ¥49\.00', nav)
    if signed_in:  # "Mark complete and continue" goes where "next" does
        page = client.get(f"/item/{course.slug}/lesson/{one.pk}/").content.decode()
        assert f'name="next" value="/item/{course.slug}/lesson/{three.pk}/"' in page


def test_a_learner_with_the_item_gets_the_plain_next_lesson(tenant_a, course):
    course, (one, two, three, four) = course
    learner = member(tenant_a)
    grant(tenant_a, learner, item=course)
    client = host_client("alpha.test", learner)

    assert f'href="/item/{course.slug}/lesson/{two.pk}/">Lesson 2 →' in navigation(client, course, one)
    nav = navigation(client, course, three)
    assert f'href="/item/{course.slug}/lesson/{two.pk}/">← Lesson 2' in nav
    assert f'href="/item/{course.slug}/lesson/{four.pk}/">Lesson 4 →' in nav
    assert "for learners who own this item" not in nav
    assert "for learners who own this item" not in navigation(client, course, four)  # the last lesson: nothing next


def test_the_last_lesson_offers_nothing_next(tenant_a, course):
    course, (one, two, three, four) = course
    with scope(tenant=tenant_a):
        four.is_preview = True
        four.save(update_fields=["is_preview"])
    nav = navigation(host_client("alpha.test"), course, four)
    assert "→" not in nav and "for learners who own this item" not in nav
