"""A recommender run's status is not worded as a payment's: the two share English words, not Chinese ones.

The run's "Succeeded" and "Failed" have their own translation context ("recommender run"); the second test reads
the Chinese catalogue's entries for them.
"""

from django.utils import translation

from recommender.models import FitRun


def _labels(language: str) -> list[str]:
    with translation.override(language):
        return [str(FitRun.Status.SUCCEEDED.label), str(FitRun.Status.FAILED.label)]


def test_a_runs_status_is_not_called_a_payment_in_chinese():
    assert not any("支付" in label for label in _labels("zh-hans"))
    assert _labels("en") == ["Succeeded", "Failed"]


def test_a_runs_status_reads_succeeded_or_failed_in_chinese():
    assert _labels("zh-hans") == ["成功", "失败"]
