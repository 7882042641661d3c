"""The course's Vietnamese instruction data, format conversions, and a strict loader for your own files.

Formats:
- Alpaca:   {"instruction": str, "input": str (optional), "output": str}
- ShareGPT: {"conversations": [{"from": "system"|"human"|"gpt", "value": str}, ...]}
- messages: {"messages": [{"role": "system"|"user"|"assistant", "content": str}, ...]}

Every record that cannot be used raises DatasetFormatError naming the file and the line; nothing
is skipped. All text is normalised to Unicode NFC.
"""

from __future__ import annotations

import json
import unicodedata
from importlib import resources
from pathlib import Path

from .env import is_hub_id
from .errors import CourseError

SPLITS = ("train", "validation", "test")
# questions outside the course's subject, answered before and after fine-tuning: what the model may forget
PROBE = "probe"
SYSTEM_PROMPT = "Bạn là trợ lý AI trả lời bằng tiếng Việt, ngắn gọn và chính xác."
ALPACA_KEYS = {"instruction", "input", "output"}
SHAREGPT_ROLES = {"system": "system", "human": "user", "gpt": "assistant"}
MESSAGE_ROLES = {"system", "user", "assistant"}


class DatasetFormatError(CourseError):
    """A record that cannot be used; the message names the file, the line and (in a JSON list) the record."""

    def __init__(self, source: str, line: int | None, problem: str, record: int | None = None):
        self.source, self.line, self.problem, self.record = source, line, problem, record
        where = f"{source}, dòng {line}" if line is not None else source
        if record is not None:
            where += f" (bản ghi thứ {record})"
        super().__init__(f"{where}: {problem}")


class DatasetSourceError(CourseError):
    """A data path or dataset id that cannot be read; the message says what to do."""


# ---------------------------------------------------------------- the course dataset

def load_split(split: str) -> list[dict]:
    """One split ("train", "validation", "test") of the course dataset, or the forgetting probe ("probe"),
    as Alpaca records."""
    if split not in (*SPLITS, PROBE):
        raise ValueError(f'Không có split "{split}". Chọn một trong: {", ".join(SPLITS)}, {PROBE}.')
    resource = resources.files("course_utils").joinpath(f"data/{split}.jsonl")
    records, fmt = parse_records(resource.read_text(encoding="utf-8"), source=f"course_utils/data/{split}.jsonl",
                                 jsonl=True)
    assert fmt == "alpaca"
    return records


# ---------------------------------------------------------------- conversions

def alpaca_to_messages(record: dict, system: str | None = SYSTEM_PROMPT) -> list[dict]:
    """Alpaca record -> chat messages (the input, if any, follows the instruction)."""
    user = record["instruction"]
    if record.get("input"):
        user = f"{user}\n\n{record['input']}"
    messages = [{"role": "user", "content": user}, {"role": "assistant", "content": record["output"]}]
    if system:
        messages.insert(0, {"role": "system", "content": system})
    return messages


def alpaca_to_sharegpt(record: dict, system: str | None = None) -> dict:
    """Alpaca record -> ShareGPT record."""
    conv = [{"from": "human", "value": record["instruction"] + (f"\n\n{record['input']}" if record.get("input") else "")},
            {"from": "gpt", "value": record["output"]}]
    if system:
        conv.insert(0, {"from": "system", "value": system})
    return {"conversations": conv}


def sharegpt_to_alpaca(record: dict) -> dict:
    """Single-turn ShareGPT record -> Alpaca record (the system turn, if any, is not kept)."""
    turns = [t for t in record["conversations"] if t["from"] != "system"]
    if len(turns) != 2:
        raise ValueError("Chỉ chuyển được hội thoại một lượt (một câu hỏi, một câu trả lời) sang Alpaca; "
                         f"hội thoại này có {len(turns)} lượt không phải system.")
    return {"instruction": turns[0]["value"], "input": "", "output": turns[1]["value"]}


def sharegpt_to_messages(record: dict) -> list[dict]:
    return [{"role": SHAREGPT_ROLES[t["from"]], "content": t["value"]} for t in record["conversations"]]


def to_messages(record: dict, fmt: str, system: str | None = SYSTEM_PROMPT) -> list[dict]:
    """Any supported record -> chat messages."""
    if fmt == "alpaca":
        return alpaca_to_messages(record, system)
    if fmt == "sharegpt":
        return sharegpt_to_messages(record)
    if fmt == "messages":
        return list(record["messages"])
    raise ValueError(f"Định dạng không hỗ trợ: {fmt}")


def conversation_turns(messages: list[dict]) -> list[tuple[list[dict], dict]]:
    """(the messages before it, the answer) for every assistant answer of a conversation."""
    return [(messages[:i], m) for i, m in enumerate(messages) if m["role"] == "assistant"]


def to_training_dataset(records: list[dict], loss_on: str = "assistant_only", fmt: str = "alpaca",
                        system: str | None = SYSTEM_PROMPT):
    """A datasets.Dataset for TRL, with the loss on every answer of the assistant.

    loss_on="assistant_only": {"messages"} (the chat template's {% generation %} markers find the answers);
    loss_on="completion_only": {"prompt", "completion"}, one row per answer (a conversation of k answers gives
    k rows, each prompt holding the conversation so far).
    """
    from datasets import Dataset

    rows = []
    for r in records:
        messages = to_messages(r, fmt, system)
        if loss_on == "assistant_only":
            rows.append({"messages": messages})
        elif loss_on == "completion_only":
            rows.extend({"prompt": before, "completion": [answer]} for before, answer in conversation_turns(messages))
        else:
            raise ValueError(f'loss_on phải là "assistant_only" hoặc "completion_only", không phải "{loss_on}".')
    return Dataset.from_list(rows)


def eval_pairs(records: list[dict], fmt: str = "alpaca", system: str | None = SYSTEM_PROMPT):
    """(prompt messages, reference answer) of each record: the conversation up to its last answer, and that answer."""
    pairs = []
    for r in records:
        before, answer = conversation_turns(to_messages(r, fmt, system))[-1]
        pairs.append((before, answer["content"]))
    return pairs


# ---------------------------------------------------------------- loading your own data

def load_records(path: str | Path) -> tuple[list[dict], str]:
    """Read a JSONL (one record per line) or JSON (a list of records) file; return (records, format)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetSourceError(f"Không tìm thấy tệp {path}. Kiểm tra lại đường dẫn.")
    if path.suffix.lower() in (".csv", ".tsv", ".parquet", ".xlsx", ".xls"):
        raise DatasetSourceError(f"{path}: khóa học đọc tệp JSONL (mỗi dòng một bản ghi JSON) hoặc JSON (một danh "
                                 "sách bản ghi). Hãy chuyển tệp sang JSONL, ví dụ bằng pandas: "
                                 'df.to_json("data.jsonl", orient="records", lines=True, force_ascii=False).')
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DatasetFormatError(str(path), None, f"tệp không phải UTF-8 ({e}). Hãy lưu lại tệp với mã hóa UTF-8.")
    return parse_records(text, source=str(path), jsonl=path.suffix.lower() != ".json")


def load_hub_records(name: str, split: str = "train", token: str | None = None) -> tuple[list[dict], str]:
    """A dataset from the Hugging Face Hub (needs internet, e.g. on Colab), or a local dataset directory that
    `datasets.load_dataset` reads (JSON/CSV/Parquet files, or a save_to_disk folder); checked like a file.

    "dòng" in an error is the row number (from 1).
    """
    import datasets

    path = Path(name).expanduser()
    try:
        if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
            ds = datasets.load_from_disk(str(path))
            if isinstance(ds, datasets.DatasetDict):
                ds = ds[split] if split in ds else ds[next(iter(ds))]
        else:
            ds = datasets.load_dataset(str(path) if path.is_dir() else name, split=split, token=token)
    except (FileNotFoundError, ValueError, ConnectionError, OSError) as e:
        raise DatasetSourceError(
            f'Không đọc được bộ dữ liệu "{name}" ({type(e).__name__}: {str(e).splitlines()[0][:160]}). '
            "Với tên trên Hub: kiểm tra tên, mạng và token (bộ dữ liệu gated cần HF_TOKEN); với thư mục: nó phải chứa "
            "tệp .json/.jsonl/.csv/.parquet hoặc là thư mục save_to_disk.") from None
    return check_records(list(ds), source=f"{name} [{split}]", lines=list(range(1, len(ds) + 1)))


def load_source(source: str | Path, token: str | None = None) -> tuple[list[dict], str]:
    """Records and their format from a JSONL/JSON file, a local dataset directory, or a Hub dataset id."""
    path = Path(source).expanduser()
    if path.is_file():
        return load_records(path)
    if path.is_dir() or is_hub_id(str(source)):
        return load_hub_records(str(source), token=token)
    raise DatasetSourceError(f'Không tìm thấy tệp dữ liệu "{source}". Kiểm tra đường dẫn (đuôi .jsonl: mỗi dòng một '
                             'bản ghi; .json: một danh sách bản ghi), hoặc dùng tên một bộ dữ liệu trên Hub '
                             '("tổ-chức/tên", cần mạng).')


def split_records(records: list, validation_share: float = 0.1, seed: int = 42) -> tuple[list, list]:
    """A seeded shuffle, then the last `validation_share` of the records (at least one) for validation."""
    import random

    if not 0 < validation_share < 1:
        raise DatasetSourceError(f"Tỉ lệ kiểm định phải nằm giữa 0 và 1, không phải {validation_share}.")
    if len(records) < 2:
        raise DatasetSourceError(f"Cần ít nhất 2 bản ghi để tách tập huấn luyện và tập kiểm định; tệp chỉ có "
                                 f"{len(records)}. Hãy thêm dữ liệu, hoặc đưa tập kiểm định riêng bằng --validation.")
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    n_val = max(1, round(len(records) * validation_share))
    return [records[i] for i in order[:-n_val]], [records[i] for i in order[-n_val:]]


def parse_records(text: str, source: str, jsonl: bool = True) -> tuple[list[dict], str]:
    """Parse JSONL or a JSON list, keeping the line of each record, then check every record."""
    text = text.lstrip("\ufeff")
    values, lines = [], []
    if jsonl:
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue  # a blank line holds no record
            try:
                values.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise DatasetFormatError(source, n, f"JSON không hợp lệ ({e.msg}, cột {e.colno}). "
                                         "Mỗi dòng phải là một đối tượng JSON đầy đủ.") from None
            lines.append(n)
    else:
        values, lines = _parse_json_list(text, source)
    if not values:
        raise DatasetFormatError(source, None, "tệp không có bản ghi nào.")
    return check_records(values, source, lines, number_records=not jsonl)


def _parse_json_list(text: str, source: str) -> tuple[list, list[int]]:
    decoder = json.JSONDecoder()

    def line_of(pos: int) -> int:
        return text.count("\n", 0, pos) + 1

    def skip_ws(pos: int) -> int:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        return pos

    try:
        json.loads(text)
    except json.JSONDecodeError as e:
        raise DatasetFormatError(source, e.lineno, f"JSON không hợp lệ ({e.msg}, cột {e.colno}).") from None
    pos = skip_ws(0)
    if pos >= len(text) or text[pos] != "[":
        raise DatasetFormatError(source, line_of(pos), "tệp .json phải chứa một danh sách bản ghi [ {...}, {...} ]. "
                                 "Với mỗi bản ghi trên một dòng, dùng đuôi .jsonl.")
    values, lines = [], []
    pos = skip_ws(pos + 1)
    while text[pos] != "]":
        value, end = decoder.raw_decode(text, pos)
        values.append(value)
        lines.append(line_of(pos))
        pos = skip_ws(end)
        if text[pos] == ",":
            pos = skip_ws(pos + 1)
    return values, lines


def detect_format(record) -> str | None:
    if not isinstance(record, dict):
        return None
    if "conversations" in record:
        return "sharegpt"
    if "messages" in record:
        return "messages"
    if {"instruction", "output"} & set(record):
        return "alpaca"
    return None


def _nfc(value):
    return unicodedata.normalize("NFC", value)


def check_records(values: list, source: str, lines: list[int], number_records: bool = False) -> tuple[list[dict], str]:
    """Check and NFC-normalise records; all must share one format. Returns (records, format).

    number_records: name the record's position too (a JSON list may hold many records on one line).
    """
    fmt = None
    out = []
    for k, (value, line) in enumerate(zip(values, lines), start=1):
        try:
            this = detect_format(value)
            if this is None:
                if not isinstance(value, dict):
                    problem = f"bản ghi phải là một đối tượng JSON {{...}}, không phải {type(value).__name__}."
                else:
                    problem = (f"không nhận ra định dạng (các khóa: {sorted(value)}). Hỗ trợ: Alpaca "
                               '{"instruction", "input", "output"}, ShareGPT {"conversations": [...]}, '
                               'hoặc {"messages": [...]}.')
                raise DatasetFormatError(source, line, problem)
            if fmt is None:
                fmt = this
            elif this != fmt:
                raise DatasetFormatError(source, line, f"bản ghi ở định dạng {this}, trong khi các bản ghi trước ở định "
                                         f"dạng {fmt}. Một tệp chỉ được dùng một định dạng.")
            out.append(_CHECKERS[this](value, source, line))
        except DatasetFormatError as e:
            if not number_records:
                raise
            raise DatasetFormatError(source, e.line, e.problem, record=k) from None
    return out, fmt


def _text_field(record: dict, key: str, source: str, line: int, required: bool = True, where: str = "") -> str:
    label = f'"{key}"{where}'
    if key not in record:
        if required:
            raise DatasetFormatError(source, line, f"thiếu trường {label}. Hãy thêm trường này.")
        return ""
    value = record[key]
    if not isinstance(value, str):
        raise DatasetFormatError(source, line, f"trường {label} phải là chuỗi, không phải "
                                 f"{type(value).__name__} ({json.dumps(value, ensure_ascii=False)[:40]}).")
    if required and not value.strip():
        raise DatasetFormatError(source, line, f"trường {label} đang rỗng. Hãy điền nội dung hoặc xóa bản ghi này.")
    return _nfc(value)


def _check_alpaca(record: dict, source: str, line: int) -> dict:
    extra = set(record) - ALPACA_KEYS
    if extra:
        raise DatasetFormatError(source, line, f"trường lạ {sorted(extra)} trong bản ghi Alpaca. Chỉ dùng "
                                 '"instruction", "input", "output"; hãy xóa hoặc đổi tên trường thừa.')
    return {
        "instruction": _text_field(record, "instruction", source, line),
        "input": _text_field(record, "input", source, line, required=False),
        "output": _text_field(record, "output", source, line),
    }


def _check_turns(record: dict, key: str, role_key: str, text_key: str, roles: dict, source: str, line: int) -> list:
    turns = record[key]
    extra = set(record) - {key}
    if extra:
        raise DatasetFormatError(source, line, f"trường lạ {sorted(extra)} bên cạnh \"{key}\". Hãy xóa chúng.")
    if not isinstance(turns, list) or not turns:
        raise DatasetFormatError(source, line, f'"{key}" phải là một danh sách lượt hội thoại không rỗng.')
    out, last = [], None
    for i, turn in enumerate(turns, start=1):
        where = f" của lượt {i}"
        if not isinstance(turn, dict):
            raise DatasetFormatError(source, line, f"lượt {i} phải là một đối tượng JSON.")
        role = _text_field(turn, role_key, source, line, where=where)
        if role not in roles:
            raise DatasetFormatError(source, line, f'vai "{role}" ở lượt {i} không hợp lệ; dùng một trong {sorted(roles)}.')
        text = _text_field(turn, text_key, source, line, where=where)
        mapped = roles[role]
        if mapped == "system" and i != 1:
            raise DatasetFormatError(source, line, f"lượt system chỉ được đứng đầu hội thoại (gặp ở lượt {i}).")
        if mapped != "system":
            expected = "user" if last in (None, "assistant") else "assistant"
            if mapped != expected:
                raise DatasetFormatError(source, line, f"lượt {i}: người dùng và trợ lý phải nói xen kẽ, bắt đầu bằng "
                                         "người dùng.")
            last = mapped
        out.append({role_key: role, text_key: text})
    if last != "assistant":
        raise DatasetFormatError(source, line, "hội thoại phải kết thúc bằng một câu trả lời của trợ lý.")
    return out


def _check_sharegpt(record: dict, source: str, line: int) -> dict:
    return {"conversations": _check_turns(record, "conversations", "from", "value", SHAREGPT_ROLES, source, line)}


def _check_messages(record: dict, source: str, line: int) -> dict:
    roles = {r: r for r in MESSAGE_ROLES}
    return {"messages": _check_turns(record, "messages", "role", "content", roles, source, line)}


_CHECKERS = {"alpaca": _check_alpaca, "sharegpt": _check_sharegpt, "messages": _check_messages}
