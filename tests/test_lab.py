"""The lab (course_utils.lab) on the tiny profile: the whole flow, your own data in every format, the loss on every
answer, clear errors at every entry, chat with the result."""

import json
import subprocess
import sys

import pytest

from course_utils import lab
from course_utils.data import load_split
from course_utils.errors import CourseError
from course_utils.profiles import get_profile

QUICK = dict(max_steps=2, eval_steps=2, save_steps=2, logging_steps=1, n_eval_examples=2, eval_max_new_tokens=6,
             per_device_train_batch_size=4)
TINY = get_profile("tiny").replace(**QUICK)

ALPACA = [{"instruction": f"Câu hỏi {i}: LoRA là gì?", "input": "", "output": f"Một cập nhật hạng thấp, số {i}."}
          for i in range(10)]
SHAREGPT = [{"conversations": [{"from": "human", "value": f"Chào {i}"}, {"from": "gpt", "value": "Chào bạn!"},
                               {"from": "human", "value": "QLoRA là gì?"},
                               {"from": "gpt", "value": f"LoRA trên mô hình 4-bit, số {i}."}]} for i in range(10)]
MESSAGES = [{"messages": [{"role": "user", "content": f"Hỏi {i}"}, {"role": "assistant", "content": f"Đáp {i}"}]}
            for i in range(10)]


def write_jsonl(path, records):
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def course_run(tmp_path_factory, tiny_dir):
    """The whole lab once on the course data, as the notebook runs it (the tiny model)."""
    out = tmp_path_factory.mktemp("lab")
    return lab.run(TINY.replace(max_steps=4, eval_steps=2, save_steps=2), out, fresh=True), out


def test_the_whole_lab_on_the_course_data(course_run):
    summary, out = course_run
    assert summary["steps"] == 4 and summary["eval_loss_fell"] and summary["losses_finite"]
    assert summary["reloaded_answers_identical"] is True
    for name in ("loss_curve.png", "answers.csv", "probe.csv", "summary.json", "adapter/adapter_model.safetensors"):
        assert (out / name).exists(), name
    assert set(summary["rouge_before"]) >= {"rouge1", "rougeL"} and set(summary["probe_rouge_after"]) >= {"rougeL"}
    assert summary["longest_tokens"] <= TINY.max_length  # the tiny profile cuts no course record


def test_a_second_run_resumes_and_an_error_keeps_the_checkpoints(course_run, tmp_path):
    summary, out = course_run
    checkpoints = sorted(p.name for p in out.glob("checkpoint-*"))
    with pytest.raises(CourseError):
        lab.run(TINY.replace(max_steps=4), out, data=str(tmp_path / "missing.jsonl"))
    assert sorted(p.name for p in out.glob("checkpoint-*")) == checkpoints
    again = lab.run(TINY.replace(max_steps=4, eval_steps=2, save_steps=2), out)
    assert again["steps"] == 4 and again["resumed_from"].endswith("checkpoint-4")


@pytest.mark.parametrize("records, name", [(ALPACA, "alpaca.jsonl"), (SHAREGPT, "sharegpt.jsonl"),
                                            (MESSAGES, "messages.json")])
def test_your_own_data_in_each_format(tmp_path, tiny_dir, records, name):
    path = tmp_path / name
    if name.endswith(".json"):
        path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    else:
        write_jsonl(path, records)
    summary = lab.run(TINY, tmp_path / "out", data=str(path))
    assert summary["steps"] == 2 and summary["losses_finite"] and summary["reloaded_answers_identical"]
    assert "9 bản ghi huấn luyện, 1 kiểm định" in summary["data"]  # the seeded 90/10 split, reported
    assert (tmp_path / "out" / "adapter" / "adapter_config.json").exists()


def test_every_answer_of_a_conversation_is_in_the_loss(tmp_path, tiny_dir):
    from course_utils.models import load_model_and_tokenizer
    from course_utils.train import build_trainer

    model, tok = load_model_and_tokenizer(TINY)
    trainer = build_trainer(model, tok, SHAREGPT[:2], None, TINY, tmp_path, fmt="sharegpt")
    batch = next(iter(trainer.get_train_dataloader()))
    ids, labels = batch["input_ids"][0], batch["labels"][0]
    kept = tok.decode(ids[labels != -100])
    assert "Chào bạn!" in kept and "LoRA trên mô hình 4-bit" in kept  # both answers
    assert "QLoRA là gì?" not in kept and "<|im_start|>" not in kept  # no question, no role header
    assert kept.count("<|im_end|>") == 2  # each answer's end-of-turn token is trained


def test_a_validation_file_instead_of_the_split(tmp_path, tiny_dir):
    train = write_jsonl(tmp_path / "train.jsonl", ALPACA)
    val = write_jsonl(tmp_path / "val.jsonl", ALPACA[:3])
    data = lab.load_data(lab.prepare(TINY, tmp_path / "out", str(train), str(val)))
    assert (len(data.train), len(data.validation)) == (10, 3) and data.test == data.validation
    with pytest.raises(CourseError, match="cùng một định dạng"):
        lab.load_data(lab.prepare(TINY, tmp_path / "out", str(train), str(write_jsonl(tmp_path / "m.jsonl", MESSAGES))))


def test_the_memory_plan_uses_the_data_real_lengths(tmp_path, tiny_dir):
    from course_utils.models import load_tokenizer

    def plan(records, name):
        run = lab.prepare(TINY.replace(max_length=128), tmp_path / f"out-{name}", str(write_jsonl(tmp_path / name, records)))
        return lab.plan_memory(run, load_tokenizer(run.profile), lab.load_data(run))

    long = plan([{"instruction": "Viết dài.", "input": "", "output": "chữ " * 400}] + ALPACA, "long.jsonl")
    short = plan(ALPACA, "short.jsonl")
    assert long.longest > 128 > short.longest and long.truncated >= 1 and short.truncated == 0
    assert long.plan.tokens == 4 * 128 and short.plan.tokens == 4 * short.longest  # batch x real length
    assert "bị cắt" in long.text and "bị cắt" not in short.text


BAD_ARGUMENTS = [
    (["--profile", "tiny", "--model-id", "/nonexistent"], "/nonexistent"),
    (["--profile", "t4"], "GPU"),
    (["--max-steps", "-3"], "số nguyên dương"),
    (["--max-steps", "0"], "số nguyên dương"),
    (["--max-steps", "ba"], "không phải số nguyên"),
    (["--profile", "tiny", "--data", "/nonexistent.jsonl"], "Không tìm thấy"),
    (["--profile", "tiny", "--output-dir", "/proc/not-writable"], "Không ghi được"),
    (["--profile", "tiny", "--validation", "v.jsonl"], "--data"),
    (["--profile", "tiny", "--chat", "--output-dir", "{tmp}/empty"], "Không có adapter"),
    (["--profile", "nope"], "Không có profile"),
]


@pytest.mark.parametrize("argv, words", BAD_ARGUMENTS, ids=lambda x: " ".join(x) if isinstance(x, list) else None)
def test_bad_arguments_say_what_to_do_and_exit_2(argv, words, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    try:
        code = lab.main(argv)
    except SystemExit as e:  # argparse's own errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and words in err and "Traceback" not in err


@pytest.mark.parametrize("content, words", [
    (json.dumps([{"instruction": "a", "output": "b"}, {"instruction": "c"}]), "bản ghi thứ 2"),
    ('{"instruction": "a", "output": "b"}\n{"question": "c"}\n', "dòng 2"),
    ("a,b\n1,2\n", "JSONL"),
])
def test_bad_data_files(tmp_path, capsys, content, words):
    suffix = ".json" if content.startswith("[") else ".csv" if content.startswith("a,b") else ".jsonl"
    path = tmp_path / f"data{suffix}"
    path.write_text(content, encoding="utf-8")
    assert lab.main(["--profile", "tiny", "--data", str(path), "--output-dir", str(tmp_path / "out")]) == 2
    assert words in capsys.readouterr().err


def test_unknown_model_offline_and_gated_model(monkeypatch):
    from huggingface_hub.errors import GatedRepoError

    from course_utils.env import EnvironmentProblem
    from course_utils.models import ModelNotFound, hub_errors, load_config

    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)  # as HF_HUB_OFFLINE=1 does at start-up
    with pytest.raises(ModelNotFound, match="ngoại tuyến"):
        load_config(TINY.replace(model_id="khong-co/mo-hinh-nay"))
    gated = GatedRepoError.__new__(GatedRepoError)  # what the Hub raises for a gated repository without access
    Exception.__init__(gated, "401: gated")
    with pytest.raises(EnvironmentProblem, match="HF_TOKEN"):
        with hub_errors("org/gated", None):
            raise gated


def test_the_command_line_itself_exits_2_without_traceback():
    out = subprocess.run([sys.executable, "-m", "course_utils.lab", "--profile", "tiny", "--model-id", "/nonexistent"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr and "/nonexistent" in out.stderr
    # bitsandbytes' import-time log on a CPU with AVX512-BF16 (compat.quiet_logs): nothing a learner can act on
    assert "kernels-community" not in out.stderr


def test_a_misspelt_optimizer_is_refused_before_loading():
    out = subprocess.run([sys.executable, "-m", "course_utils.lab", "--profile", "tiny", "--set", "optim=adamw8"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert 'optim="adamw8"' in out.stderr and "--set optim=adamw_8bit" in out.stderr


def test_chat_streams_the_same_answer_as_greedy_generation(course_run, capsys):
    from course_utils.models import generate_answers

    summary, out = course_run
    question = load_split("test")[0]["instruction"]
    assert lab.main(["--profile", "tiny", "--chat", "--output-dir", str(out), "--ask", question]) == 0
    printed = capsys.readouterr().out
    model, tok = lab.reload(lab.prepare(TINY, out))
    from course_utils.data import SYSTEM_PROMPT

    expected = generate_answers(model, tok, [question], max_new_tokens=TINY.eval_max_new_tokens, system=SYSTEM_PROMPT)[0]
    assert expected and expected in printed


def test_help():
    out = subprocess.run([sys.executable, "-m", "course_utils.lab", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--data" in out.stdout and "--chat" in out.stdout


def test_the_plan_refuses_a_max_length_that_cuts_every_answer_before_loading(tmp_path, tiny_dir, monkeypatch):
    """The plan step knows where each answer starts: a max_length below every one is refused there, before the
    model loads (on a 7B, minutes), with the trainer's own message; a partial cut is a warning."""
    from course_utils.models import load_tokenizer

    monkeypatch.setattr(lab, "load_model_and_tokenizer", lambda *a, **k: pytest.fail("the model was loaded"))
    tokenizer = load_tokenizer(TINY)
    data = lab.LabData(load_split("train")[:24], load_split("validation")[:8], [], "alpaca", "")
    starts = lab.answer_starts(tokenizer, data.train, "alpaca")
    run = lab.prepare(TINY.replace(max_length=min(starts)), tmp_path / "a")
    with pytest.raises(CourseError, match=f"max_length={min(starts)}") as e:
        lab.plan_memory(run, tokenizer, data)
    suggested = int(str(e.value).split("--max-length ")[1].split(")")[0])
    assert suggested % 64 == 0 and suggested >= max(starts) + 64  # room for every prompt and some answer
    middle = sorted(starts)[len(starts) // 2]
    run = lab.prepare(TINY.replace(max_length=middle), tmp_path / "b")
    dropped = sum(s >= middle for s in starts)
    assert 0 < dropped < len(starts)
    assert f"{dropped}/{len(starts)} bản ghi huấn luyện" in lab.plan_memory(run, tokenizer, data).text


def test_the_plan_counts_the_records_the_trainer_drops(tiny_dir, tmp_path):
    """answer_starts agrees with TRL: the records it says are cut away are the ones the trainer drops."""
    from course_utils.models import load_model_and_tokenizer
    from course_utils.train import build_trainer

    records = load_split("train")[:24]
    model, tokenizer = load_model_and_tokenizer(TINY)
    starts = lab.answer_starts(tokenizer, records, "alpaca")
    middle = sorted(starts)[len(starts) // 2]
    trainer = build_trainer(model, tokenizer, records, None, TINY.replace(max_length=middle), tmp_path)
    assert len(trainer.train_dataset) == sum(s < middle for s in starts) < len(records)
