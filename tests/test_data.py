"""The course dataset and the strict loader: every bad record raises with its line."""

import json
import unicodedata

import pytest

from course_utils.data import (DatasetFormatError, alpaca_to_messages, alpaca_to_sharegpt, load_records,
                               load_split, sharegpt_to_alpaca, sharegpt_to_messages, to_training_dataset)


def test_splits_sizes_and_disjoint():
    splits = {s: load_split(s) for s in ("train", "validation", "test")}
    n = {s: len(r) for s, r in splits.items()}
    assert sum(n.values()) >= 200
    assert 0.75 <= n["train"] / sum(n.values()) <= 0.85
    keys = {s: {(r["instruction"], r["input"]) for r in recs} for s, recs in splits.items()}
    assert not keys["train"] & keys["validation"] and not keys["train"] & keys["test"]
    assert not keys["validation"] & keys["test"]
    for recs in splits.values():
        for r in recs:
            assert set(r) == {"instruction", "input", "output"} and r["instruction"] and r["output"]
            for v in r.values():
                assert v == unicodedata.normalize("NFC", v)


def test_unknown_split():
    with pytest.raises(ValueError, match="validation"):
        load_split("dev")


def test_round_trips():
    for r in load_split("validation"):
        assert sharegpt_to_alpaca(alpaca_to_sharegpt(r)) == {
            "instruction": r["instruction"] + (f"\n\n{r['input']}" if r["input"] else ""), "input": "",
            "output": r["output"]}
        messages = alpaca_to_messages(r, system=None)
        assert sharegpt_to_messages(alpaca_to_sharegpt(r)) == messages
        assert messages[-1] == {"role": "assistant", "content": r["output"]}


def test_training_dataset_formats():
    recs = load_split("test")[:3]
    chat = to_training_dataset(recs)
    assert chat.column_names == ["messages"] and chat[0]["messages"][0]["role"] == "system"
    pc = to_training_dataset(recs, loss_on="completion_only")
    assert pc.column_names == ["prompt", "completion"]
    assert pc[0]["completion"] == [{"role": "assistant", "content": recs[0]["output"]}]


def write(tmp_path, text, name="data.jsonl"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


GOOD = json.dumps({"instruction": "Hỏi", "input": "", "output": "Đáp"}, ensure_ascii=False)


@pytest.mark.parametrize("bad, line, words", [
    ('{"instruction": "a", "output": "b"', 2, "JSON không hợp lệ"),           # truncated JSON
    ('{"instruction": "a"}', 2, '"output"'),                                   # missing field
    ('{"instruction": "   ", "output": "b"}', 2, "rỗng"),                      # empty (blank) field
    ('{"instruction": "a", "output": 5}', 2, "chuỗi"),                         # non-string value
    ('{"instruction": "a", "input": null, "output": "b"}', 2, "chuỗi"),        # null is not a string
    ('{"question": "a", "answer": "b"}', 2, "định dạng"),                      # unknown format
    ('["a", "b"]', 2, "đối tượng"),                                            # not an object
    ('{"instruction": "a", "output": "b", "extra": 1}', 2, "trường lạ"),       # unknown field
    ('{"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}]}', 2, "định dạng"),  # mixed
])
def test_bad_jsonl_lines_name_their_line(tmp_path, bad, line, words):
    p = write(tmp_path, GOOD + "\n" + bad + "\n" + GOOD + "\n")
    with pytest.raises(DatasetFormatError) as e:
        load_records(p)
    assert e.value.line == line and f"dòng {line}" in str(e.value) and str(p) in str(e.value)
    assert words in str(e.value)
    assert isinstance(e.value, ValueError)


def test_line_numbers_count_blank_lines(tmp_path):
    p = write(tmp_path, GOOD + "\n\n\n" + '{"instruction": "a"}' + "\n")
    with pytest.raises(DatasetFormatError) as e:
        load_records(p)
    assert e.value.line == 4


@pytest.mark.parametrize("conv, words", [
    ([{"from": "gpt", "value": "b"}], "xen kẽ"),
    ([{"from": "human", "value": "a"}], "kết thúc"),
    ([{"from": "human", "value": "a"}, {"from": "bot", "value": "b"}], "vai"),
    ([{"from": "human", "value": "a"}, {"from": "gpt", "value": ""}], "rỗng"),
    ([{"from": "human", "value": "a"}, {"from": "gpt"}], '"value"'),
    ([], "không rỗng"),
])
def test_bad_sharegpt(tmp_path, conv, words):
    good = json.dumps({"conversations": [{"from": "human", "value": "x"}, {"from": "gpt", "value": "y"}]})
    p = write(tmp_path, good + "\n" + json.dumps({"conversations": conv}, ensure_ascii=False) + "\n")
    with pytest.raises(DatasetFormatError) as e:
        load_records(p)
    assert e.value.line == 2 and words in str(e.value)


def test_json_list_reports_the_line_of_the_record(tmp_path):
    text = '[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "c",\n   "output": ""}\n]\n'
    with pytest.raises(DatasetFormatError) as e:
        load_records(write(tmp_path, text, "data.json"))
    assert e.value.line == 3
    with pytest.raises(DatasetFormatError) as e:
        load_records(write(tmp_path, '[\n {"instruction": "a", "output": "b"},\n {oops}\n]', "bad.json"))
    assert e.value.line == 3
    with pytest.raises(DatasetFormatError):
        load_records(write(tmp_path, '{"instruction": "a", "output": "b"}', "one.json"))


def test_empty_file_and_not_utf8(tmp_path):
    with pytest.raises(DatasetFormatError):
        load_records(write(tmp_path, "\n\n"))
    p = tmp_path / "latin.jsonl"
    p.write_bytes('{"instruction": "tiếng", "output": "b"}'.encode("utf-16"))
    with pytest.raises(DatasetFormatError):
        load_records(p)


def test_good_files_load_and_normalise(tmp_path):
    nfd = unicodedata.normalize("NFD", "Tiếng Việt")
    p = write(tmp_path, json.dumps({"instruction": nfd, "output": "ok"}) + "\n" + GOOD + "\n")
    recs, fmt = load_records(p)
    assert fmt == "alpaca" and len(recs) == 2 and recs[0]["instruction"] == "Tiếng Việt" and recs[0]["input"] == ""
    msgs = json.dumps({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
                                    {"role": "assistant", "content": "a"}]})
    recs, fmt = load_records(write(tmp_path, msgs, "m.jsonl"))
    assert fmt == "messages" and recs[0]["messages"][2]["content"] == "a"


MULTI = {"conversations": [{"from": "system", "value": "Bạn là trợ lý."}, {"from": "human", "value": "Chào"},
                           {"from": "gpt", "value": "Chào bạn!"}, {"from": "human", "value": "LoRA là gì?"},
                           {"from": "gpt", "value": "Một cập nhật hạng thấp."}]}


def test_multi_turn_gives_one_prompt_completion_row_per_answer():
    from course_utils.data import eval_pairs

    rows = to_training_dataset([MULTI], loss_on="completion_only", fmt="sharegpt")
    assert len(rows) == 2
    assert rows[0]["completion"] == [{"role": "assistant", "content": "Chào bạn!"}]
    assert [m["content"] for m in rows[1]["prompt"]] == ["Bạn là trợ lý.", "Chào", "Chào bạn!", "LoRA là gì?"]
    assert len(to_training_dataset([MULTI], fmt="sharegpt")) == 1  # assistant_only: the template finds both answers
    (prompt, reference), = eval_pairs([MULTI], "sharegpt")
    assert reference == "Một cập nhật hạng thấp." and prompt[-1]["content"] == "LoRA là gì?"


def test_json_list_on_one_line_names_the_record(tmp_path):
    from course_utils.data import load_source

    p = write(tmp_path, json.dumps([{"instruction": "a", "output": "b"}, {"instruction": "c"}]), "data.json")
    with pytest.raises(DatasetFormatError, match="bản ghi thứ 2"):
        load_source(p)


def test_sources_files_directories_and_refusals(tmp_path):
    from course_utils.data import DatasetSourceError, load_source

    (tmp_path / "d").mkdir()
    write(tmp_path / "d", "\n".join([GOOD, GOOD]) + "\n")
    records, fmt = load_source(tmp_path / "d")  # a local dataset directory, read by datasets.load_dataset
    assert fmt == "alpaca" and len(records) == 2 and records[0]["output"] == "Đáp"
    with pytest.raises(DatasetSourceError, match="JSONL"):
        load_source(write(tmp_path, "a,b\n1,2\n", "data.csv"))
    with pytest.raises(DatasetSourceError, match="Không tìm thấy"):
        load_source(tmp_path / "missing.jsonl")


def test_seeded_split_is_reproducible_and_complete():
    from course_utils.data import DatasetSourceError, split_records

    records = list(range(20))
    train, val = split_records(records, 0.1, seed=1)
    assert (train, val) == split_records(records, 0.1, seed=1) and len(val) == 2
    assert sorted(train + val) == records and split_records(records, 0.1, seed=2) != (train, val)
    with pytest.raises(DatasetSourceError):
        split_records([1], 0.1)
