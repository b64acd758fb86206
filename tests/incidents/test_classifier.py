"""The incident classifier: rules from the lexicon, police cues, validation, reloads, suggestions, threads."""

from __future__ import annotations

import os
import re
import time
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from eqian.core.config import get_settings
from eqian.incidents import classifier
from eqian.incidents.classifier import (
    CATEGORIES,
    Classifier,
    LexiconError,
    load_lexicon,
    packaged_lexicon_text,
    parse_lexicon,
    read_samples,
)


@pytest.fixture(scope="module")
def packaged() -> Classifier:
    return Classifier(load_lexicon())


@pytest.fixture
def lexicon_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the packaged lexicon configured as ``EQIAN_LEXICON_PATH``, restored afterwards."""
    path = tmp_path / "lexicon.toml"
    path.write_text(packaged_lexicon_text(), encoding="utf-8")
    monkeypatch.setenv("EQIAN_LEXICON_PATH", str(path))
    monkeypatch.setattr(classifier, "RELOAD_CHECK_SECONDS", 0.0)
    get_settings.cache_clear()
    classifier.reload_lexicon()
    yield path
    monkeypatch.delenv("EQIAN_LEXICON_PATH")
    get_settings.cache_clear()
    classifier.reload_lexicon()


def test_category_set_is_the_contract_and_the_lexicon_names_every_code() -> None:
    raw = tomllib.loads(packaged_lexicon_text())
    assert list(CATEGORIES) == [
        "labor", "processing_fee", "economic", "contract", "family", "neighbor", "traffic",
        "theft", "fraud", "fire", "help", "public_order", "environment", "other",
    ]  # fmt: skip
    assert {code: body["label"] for code, body in raw["categories"].items()} == CATEGORIES
    assert classifier.lexicon_version() == raw["version"]


def test_typical_calls_get_their_category_police_flag_and_evidence(packaged: Classifier) -> None:
    wages = packaged.classify("报警人称在大港路一童装厂做了三个月，老板拖欠工资八千元不给")
    assert (wages.category, wages.police) == ("labor", False)
    assert "拖欠工资" in wages.evidence  # kept whole by the segmentation, not 拖欠 + 工资
    assert wages.version == packaged.version

    fee = packaged.classify("加工户反映上家欠加工费三万元，货拿走了钱一直不给")
    assert (fee.category, fee.police) == ("processing_fee", False)
    assert fee.evidence[0] == "加工费"  # strongest word first

    scam = packaged.classify("接到自称公安局的电话，让她把钱转到安全账户，已转三万")
    assert (scam.category, scam.police) == ("fraud", True)
    assert "安全账户" in scam.evidence


def test_violence_makes_a_dispute_a_police_matter_unless_negated(packaged: Classifier) -> None:
    calm = packaged.classify("工人在厂门口讨要工资，老板不给")
    violent = packaged.classify("工人在厂门口讨要工资，老板叫人动手打人")
    assert (calm.category, calm.police) == ("labor", False)
    assert (violent.category, violent.police) == ("labor", True)
    assert "打人" in violent.evidence
    negated = packaged.classify("邻居因为停车位吵架，没有打人，要求调解")
    assert (negated.category, negated.police) == ("neighbor", False)


def test_category_cues_turn_the_default_either_way(packaged: Classifier) -> None:
    fishing = packaged.classify("晚上有人在太湖禁渔区电鱼")
    smell = packaged.classify("附近印花厂往河里偷排污水，河水发臭")
    assert (fishing.category, fishing.police) == ("environment", True)
    assert (smell.category, smell.police) == ("environment", False)
    burning = packaged.classify("童装厂三楼冒烟，有明火")
    hazard = packaged.classify("投诉出租房楼道里电动车飞线充电，存在火灾隐患")
    assert (burning.category, burning.police) == ("fire", True)
    assert (hazard.category, hazard.police) == ("fire", False)
    lost = packaged.classify("五岁的儿子在童装城走失了")
    locked_out = packaged.classify("钥匙锁在屋里进不去，求助帮忙开锁")
    assert (lost.category, lost.police) == ("help", True)
    assert (locked_out.category, locked_out.police) == ("help", False)


def test_nothing_recognised_is_other_with_zero_confidence(packaged: Classifier) -> None:
    for text in ("", "   ", "嗯嗯好的", "1234567"):
        result = packaged.classify(text)
        assert (result.category, result.confidence, result.evidence) == ("other", 0.0, ())
        assert result.police is False


def test_confidence_follows_the_margin(packaged: Classifier) -> None:
    clear = packaged.classify("老板拖欠工资，讨薪无果，欠薪两个月")
    mixed = packaged.classify("老板欠货款和工资")  # economic and labour words both
    assert 0 < mixed.confidence < clear.confidence <= 1


def test_text_is_normalised_and_compounds_are_looked_into(packaged: Classifier) -> None:
    # full-width Latin letters, and a dictionary compound (卖淫嫖娼) holding lexicon words
    assert packaged.classify("ＫＴＶ门口有人打架").category == "public_order"
    assert packaged.classify("宾馆里疑似有卖淫嫖娼").category == "public_order"
    long_text = "老板拖欠工资。" + "今天天气不错。" * 1000
    assert packaged.classify(long_text).category == "labor"


def _lexicon_with(replace: str, by: str) -> dict[str, object]:
    text = packaged_lexicon_text()
    assert replace in text
    return tomllib.loads(text.replace(replace, by, 1))


@pytest.mark.parametrize(
    ("replace", "by", "message"),
    [
        ("[categories.other]", "[categories.gossip]", "categories.gossip: unknown category code 'gossip'"),
        ('"欠薪" = 6', '"欠薪" = -1', "categories.labor.keywords.'欠薪': weight -1 is out of range"),
        ('"欠薪" = 6', '"欠薪" = 11', "categories.labor.keywords.'欠薪': weight 11 is out of range"),
        ('"欠薪" = 6', '"欠薪" = "high"', "categories.labor.keywords.'欠薪': weight must be a number"),
        ('"欠薪" = 6', '"欠薪" = true', "categories.labor.keywords.'欠薪': weight must be a number"),
        ('label = "劳资纠纷"', 'label = "工资"', "categories.labor.label is '工资'"),
        ("police = false\n[categories.labor.keywords]", 'police = "no"\n[categories.labor.keywords]',
         "categories.labor.police must be true or false"),
        ('version = "', 'revision = 3\nversion = "', "unknown key(s) revision"),
        ('version = "2026', 'version = "2026' + "x" * 40, "version must be a non-empty string"),
        ('"打人", "殴打"', '"打人", 7', "police.cues contains 7"),
    ],
)  # fmt: skip
def test_a_bad_lexicon_is_rejected_naming_the_entry(replace: str, by: str, message: str) -> None:
    with pytest.raises(LexiconError) as caught:
        parse_lexicon(_lexicon_with(replace, by), source="mine.toml")
    assert str(caught.value).startswith("mine.toml: ")
    assert message in str(caught.value)


def test_a_missing_category_or_a_broken_file_is_rejected(tmp_path: Path) -> None:
    data = tomllib.loads(packaged_lexicon_text())
    del data["categories"]["help"]
    with pytest.raises(LexiconError, match="missing category table\\(s\\) help"):
        parse_lexicon(data)
    broken = tmp_path / "broken.toml"
    broken.write_text('version = "x"\n[categories.labor\n', encoding="utf-8")
    with pytest.raises(LexiconError, match=r"broken\.toml: not valid TOML"):
        load_lexicon(broken)
    with pytest.raises(LexiconError, match="cannot read the lexicon"):
        load_lexicon(tmp_path / "absent.toml")


def test_officers_lexicon_is_used_and_reloaded_when_edited(lexicon_file: Path) -> None:
    text = "有人在河边放地笼抓龙虾"
    assert classifier.classify(text).category == "environment"
    edited = (
        re.sub(r'(?m)^version = ".*"$', 'version = "zhili-local-1"', packaged_lexicon_text())
        .replace('"地笼" = 6\n', "")
        .replace('"打鱼" = 3\n', '"打鱼" = 3\n"龙虾" = 6\n')
    )
    assert edited.count("zhili-local-1") == 1
    lexicon_file.write_text(edited, encoding="utf-8")
    os.utime(lexicon_file, (time.time() + 5, time.time() + 5))  # a new mtime even on coarse clocks
    result = classifier.classify(text)
    assert (result.version, result.category, result.evidence[0]) == ("zhili-local-1", "environment", "龙虾")
    assert classifier.lexicon_version() == "zhili-local-1"

    # a broken edit is logged and ignored: the last good rules stay in force
    lexicon_file.write_text(edited.replace('"龙虾" = 6', '"龙虾" = 60'), encoding="utf-8")
    os.utime(lexicon_file, (time.time() + 10, time.time() + 10))
    assert classifier.classify(text).version == "zhili-local-1"
    # …but a process starting with a broken file fails loudly
    classifier.reload_lexicon()
    with pytest.raises(LexiconError, match="weight 60 is out of range"):
        classifier.classify(text)


def test_suggest_rules_learns_from_corrections(packaged: Classifier) -> None:
    overrides = [
        ("客户在直播间下单后申请仅退款，货没退回", "economic"),
        ("直播间买的衣服申请仅退款被拒", "other"),
        ("对方申请仅退款，衣服寄回来是旧的，直播间卖家要求处理", "economic"),
        ("仅退款纠纷，买家不退货", "economic"),
        ("老板拖欠工资，工人申请仅退款", "nonsense"),  # unknown category: ignored
        ("工人反映拖欠工资", "labor"),
        ("工人讨要工资", "labor"),
    ]
    suggestions = packaged.suggest_rules(overrides)
    by_word = {(s.word, s.category): s for s in suggestions}
    refund = by_word[("退款", "economic")]  # a contract keyword, not yet an economic one
    assert (refund.support, refund.specificity) == (3, 0.75)
    assert suggestions[0] == refund  # best support × specificity first
    assert ("直播间", "economic") in by_word  # support 2, specificity 2/3
    assert by_word[("直播间", "economic")].support == 2
    # not proposed: words already in the category, stopwords, numbers, one-off words, single characters
    words = {s.word for s in suggestions}
    assert not words & {"拖欠工资", "讨要工资", "工人", "要求", "处理", "对方", "申请", "买家", "仅"}
    assert all(len(s.word) >= 2 and s.support >= 2 for s in suggestions)
    assert packaged.suggest_rules(overrides, min_support=4) == []
    everything = packaged.suggest_rules(overrides, min_support=1, limit=1000)
    assert ("买家", "economic") in {(s.word, s.category) for s in everything}
    assert len(packaged.suggest_rules(overrides, min_support=1, limit=2)) == 2
    assert classifier.suggest_rules([]) == []


def test_classification_is_thread_safe_and_deterministic(packaged: Classifier) -> None:
    texts = [s.text for s in read_samples()][:200]
    expected = [packaged.classify(t) for t in texts]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(packaged.classify, texts * 4))
    assert results == expected * 4


def test_the_process_wide_classifier_is_built_once_under_concurrent_first_use() -> None:
    classifier.reload_lexicon()
    with ThreadPoolExecutor(max_workers=8) as pool:
        engines = list(pool.map(lambda _: classifier.active_classifier(), range(16)))
    assert len({id(e) for e in engines}) == 1
