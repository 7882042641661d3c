"""The QLoRA lab as small steps, shared by notebooks/09_qlora_lab and the command line (`run` calls them in order).

    python -m course_utils.lab --profile tiny                        # CPU, the offline tiny model, the course data
    python -m course_utils.lab --profile tiny --data my.jsonl        # your data (JSONL/JSON: Alpaca, ShareGPT, messages)
    python -m course_utils.lab --profile t4 --model-id org/name      # another causal LM on a T4
    python -m course_utils.lab --profile tiny --chat                 # talk to the adapter trained in --output-dir
    accelerate launch --config_file src/course_utils/accelerate/2gpu.yaml -m course_utils.lab --profile t4   # two GPUs

Steps: prepare (check every argument, nothing loaded), load_data, load_tokenizer + plan_memory (refuses what
does not fit, before any weight is loaded), load_model, evaluate (before), train (resumes from the newest
checkpoint), evaluate (after), save, reload and compare, write_outputs. Outputs in the output directory:
checkpoints, adapter/, loss_curve.png, answers.csv, summary.json.
"""

from __future__ import annotations

if __name__ == "__main__":  # the command line: quiet before peft imports bitsandbytes, whose import logs to the CPU
    from course_utils.compat import quiet_logs

    quiet_logs()

import argparse  # noqa: E402
import gc
import os
import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .data import SYSTEM_PROMPT, load_source, load_split, split_records, to_messages
from .env import check_gpu, get_hf_token
from .errors import CourseError
from .memory import check_plan, estimate_training_memory
from .metrics import evaluate_answers
from .models import load_config, load_model_and_tokenizer, load_tokenizer, model_path
from .profiles import PROFILES, Profile, get_profile
from .train import (build_trainer, check_optim, default_output_dir, loss_history, no_answer_left, plot_losses,
                    resolve_loss, train_with_resume)


class LabError(CourseError):
    """A lab argument that cannot work (an output folder that cannot be written, ...); the message says what to do."""


def _state():
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())  # CPU processes (the CI test) talk over gloo


def is_main_process() -> bool:
    """True in a single process, and on rank 0 under `accelerate launch`: only it evaluates and writes files."""
    return _state().is_main_process


def wait_for_everyone() -> None:
    """A barrier between the processes of `accelerate launch` (nothing in a single process)."""
    _state().wait_for_everyone()


# ---------------------------------------------------------------- 1. check everything, load nothing

@dataclass
class Lab:
    """One run's settings, checked: the profile, where outputs go, where the data comes from, the token."""

    profile: Profile
    output_dir: Path
    data: str | None = None  # None: the course's dataset
    validation: str | None = None
    token: str | None = field(default=None, repr=False)  # never printed


def _writable(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".ghi-thu-{os.getpid()}"  # one per process: several may check at once
        probe.write_text("ok", encoding="utf-8")
        probe.unlink()
    except OSError as e:
        raise LabError(f'Không ghi được vào thư mục kết quả "{path}" ({e.strerror or e}). Hãy chọn một thư mục khác '
                       "bằng --output-dir (trên Colab: /content/... hoặc Google Drive đã gắn).") from None


def prepare(profile: Profile, output_dir: str | Path | None = None, data: str | None = None,
            validation: str | None = None) -> Lab:
    """Check the run before anything heavy: GPU for a GPU profile, the model id, the token, the output folder."""
    check_gpu(profile)  # first: a t4 profile on a machine without a GPU says so before any download
    if profile.use_liger_kernel:
        import importlib.util

        if importlib.util.find_spec("liger_kernel") is None:
            raise LabError(f'Profile "{profile.name}" dùng kernel của Liger (use_liger_kernel=True) nhưng chưa cài '
                           "liger-kernel. Hãy chạy: pip install -r requirements-gpu.txt (ô cài đặt trên Colab đã làm "
                           "việc này), hoặc tắt nó: --set use_liger_kernel=false.")
    model_path(profile)  # a local path that does not exist is refused here
    check_optim(profile)  # a misspelt optimizer, before minutes of loading
    if validation and not data:
        raise LabError("--validation chỉ dùng cùng --data (tập kiểm định cho dữ liệu của bạn). Hãy thêm --data.")
    token = get_hf_token(profile, prompt=sys.stdin.isatty())
    output_dir = Path(output_dir or default_output_dir(profile)).expanduser()
    _writable(output_dir)
    return Lab(profile=profile, output_dir=output_dir, data=data, validation=validation, token=token)


# ---------------------------------------------------------------- 2. data

@dataclass
class LabData:
    """Records of one format for training, validation and the before/after evaluation, and how they were made."""

    train: list
    validation: list
    test: list
    fmt: str
    note: str


def load_data(lab: Lab) -> LabData:
    """The course's splits, or your file / dataset id with --validation or a seeded split (reported in `note`)."""
    if lab.data is None:
        train, validation, test = load_split("train"), load_split("validation"), load_split("test")
        note = (f"Dữ liệu của khóa học: {len(train)} bản ghi huấn luyện, {len(validation)} kiểm định, "
                f"{len(test)} kiểm tra.")
        return LabData(train, validation, test, "alpaca", note)
    records, fmt = load_source(lab.data, token=lab.token)
    if lab.validation:
        validation, vfmt = load_source(lab.validation, token=lab.token)
        if vfmt != fmt:
            raise LabError(f"Tập huấn luyện ở định dạng {fmt} nhưng tập kiểm định ở định dạng {vfmt}: hãy dùng "
                           "cùng một định dạng cho cả hai tệp.")
        train = records
        how = f"tập kiểm định từ {lab.validation}"
    else:
        share = lab.profile.validation_share
        train, validation = split_records(records, share, seed=lab.profile.seed)
        how = (f"tách ngẫu nhiên (seed {lab.profile.seed}) {100 - round(100 * share)}/{round(100 * share)} "
               f"từ {len(records)} bản ghi")
    note = (f"Dữ liệu của bạn ({lab.data}, định dạng {fmt}): {len(train)} bản ghi huấn luyện, {len(validation)} "
            f"kiểm định ({how}). Câu trả lời trước/sau được so trên tập kiểm định.")
    return LabData(train, validation, validation, fmt, note)


def token_lengths(tokenizer, records: list, fmt: str) -> list[int]:
    """Tokens of each record after the chat template: what the trainer will see (before truncation)."""
    return [len(tokenizer.apply_chat_template(to_messages(r, fmt, SYSTEM_PROMPT), tokenize=True,
                                              return_dict=True)["input_ids"]) for r in records]


def answer_starts(tokenizer, records: list, fmt: str) -> list[int]:
    """Where each record's first answer starts, in tokens after the chat template: a max_length at or below it
    cuts every answer of the record away, and the trainer drops it."""
    starts = []
    for r in records:
        messages = to_messages(r, fmt, SYSTEM_PROMPT)
        first = next((i for i, m in enumerate(messages) if m["role"] == "assistant"), len(messages))
        starts.append(len(tokenizer.apply_chat_template(messages[:first], tokenize=True, add_generation_prompt=True,
                                                        return_dict=True)["input_ids"]))
    return starts


# ---------------------------------------------------------------- 3. memory plan, before any weight

@dataclass
class PlanReport:
    """The memory plan (None where the architecture is not one the plan models) and the data's real lengths."""

    plan: object | None
    longest: int
    truncated: int
    text: str


def plan_memory(lab: Lab, tokenizer, data: LabData) -> PlanReport:
    """The memory plan at the data's real lengths (the longest sequence after the chat template, capped by
    max_length), refused with what to lower when it does not fit the profile's budget."""
    profile = lab.profile
    lengths = token_lengths(tokenizer, data.train, data.fmt)
    longest = max(lengths)
    truncated = sum(n > profile.max_length for n in lengths)
    lines = [f"Chuỗi dài nhất sau mẫu hội thoại: {longest} token (max_length = {profile.max_length})."]
    if truncated:
        lines.append(f"Cảnh báo: {truncated} bản ghi dài hơn max_length sẽ bị cắt (mất phần cuối câu trả lời và "
                     "token kết thúc lượt): tăng max_length nếu bộ nhớ cho phép, hoặc rút ngắn dữ liệu.")
    for name, records in (("huấn luyện", data.train), ("kiểm định", data.validation)):
        starts = answer_starts(tokenizer, records, data.fmt)
        dropped = sum(start >= profile.max_length for start in starts)
        if records and dropped == len(records):  # refused here, before minutes of loading a 7B
            # suggested: room for every prompt and 64 answer tokens, in steps of 64
            raise no_answer_left(name, profile.max_length, suggest=-(-(max(starts) + 64) // 64) * 64)
        if dropped:
            lines.append(f"Cảnh báo: {dropped}/{len(records)} bản ghi {name} có phần trước câu trả lời dài từ "
                         f"max_length trở lên: câu trả lời bị cắt hết, bản ghi bị bỏ qua.")
    config = load_config(profile, lab.token)
    tokens = profile.per_device_train_batch_size * min(longest, profile.max_length)
    try:
        plan = estimate_training_memory(config, profile, "qlora" if profile.load_in_4bit else "lora", tokens=tokens)
    except (AttributeError, KeyError, TypeError) as e:  # an architecture the plan does not model
        lines.append(f"Không lập được kế hoạch bộ nhớ cho kiến trúc {config.model_type} ({e}); bỏ qua bước này.")
        return PlanReport(None, longest, truncated, "\n".join(lines))
    check_plan(plan, profile, config)
    processes = int(os.environ.get("WORLD_SIZE", "1"))
    if processes > 1:  # data-parallel: every process holds the model and its own batch
        lines.append(f"Kế hoạch cho mỗi GPU ({processes} tiến trình, mỗi tiến trình một bản mô hình):")
    lines.append(plan.table())
    return PlanReport(plan, longest, truncated, "\n".join(lines))


# ---------------------------------------------------------------- 4. model, evaluation, training

def load_model(lab: Lab):
    """The 4-bit model and its tokenizer (course_utils.models.load_model_and_tokenizer)."""
    return load_model_and_tokenizer(lab.profile, token=lab.token)


@dataclass
class Evaluation:
    """Greedy answers to the test records and to the forgetting probe, with their ROUGE (rouge_vi)."""

    table: object
    means: dict
    probe_table: object
    probe_means: dict


def evaluate(model, tokenizer, lab: Lab, data: LabData, probe: bool = True) -> Evaluation:
    """ROUGE of the greedy answers to the first n_eval_examples test records, and (probe=True) to the forgetting
    probe: questions outside the training data, what fine-tuning on a narrow set may make the model forget."""
    n, budget = lab.profile.n_eval_examples, lab.profile.eval_max_new_tokens
    table, means = evaluate_answers(model, tokenizer, data.test[:n], max_new_tokens=budget, fmt=data.fmt)
    probe_table, probe_means = (evaluate_answers(model, tokenizer, load_split("probe"), max_new_tokens=budget)
                                if probe else (None, None))
    return Evaluation(table, means, probe_table, probe_means)


def backup_outputs(output_dir: Path) -> Path | None:
    """--fresh: move earlier results aside (never deleted) so that training starts from step 0."""
    if not output_dir.exists() or not any(output_dir.iterdir()):
        return None
    backup = output_dir.with_name(f"{output_dir.name}.cu-{time.strftime('%Y%m%d-%H%M%S')}")
    shutil.move(str(output_dir), backup)
    output_dir.mkdir(parents=True)
    return backup


def train(model, tokenizer, lab: Lab, data: LabData, **sft_overrides):
    """Build the trainer (course_utils.train.build_trainer) and train, resuming from the newest checkpoint.

    Returns (trainer, resumed checkpoint or None).
    """
    trainer = build_trainer(model, tokenizer, data.train, data.validation, lab.profile, lab.output_dir,
                            fmt=data.fmt, disable_tqdm=lab.profile.is_tiny, **sft_overrides)
    return trainer, train_with_resume(trainer)


def save(trainer, lab: Lab) -> Path:
    """Only the adapter (adapter_config.json, adapter_model.safetensors), next to the checkpoints."""
    adapter_dir = lab.output_dir / "adapter"
    trainer.save_model(str(adapter_dir))
    return adapter_dir


def free_memory() -> None:
    """Collect what is no longer referenced and return GPU memory to the driver.

    Delete your own references first (`del trainer, model`): memory held by a name is not freed. bitsandbytes'
    global references to finished trainers' embeddings go too (course_utils.compat.release_optim_overrides).
    """
    from .compat import release_optim_overrides

    release_optim_overrides()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def reload(lab: Lab, adapter_dir: str | Path | None = None):
    """A fresh 4-bit base with the saved adapter on top, not merged (what inference uses)."""
    from peft import PeftModel

    adapter_dir = Path(adapter_dir or lab.output_dir / "adapter")
    if not (adapter_dir / "adapter_config.json").exists():
        raise LabError(f'Không có adapter trong "{adapter_dir}". Hãy huấn luyện trước (chạy lab không có --chat), '
                       "hoặc trỏ --output-dir tới thư mục của lần chạy đã huấn luyện.")
    base, tokenizer = load_model(lab)
    return PeftModel.from_pretrained(base, str(adapter_dir)), tokenizer


def checks(history: list[dict], before: Evaluation, after: Evaluation, reloaded_answers: list[str]) -> dict:
    """What the notebook asserts on the tiny profile and the command line records: the validation loss fell,
    every logged loss is finite, and the reloaded adapter answers exactly as the trained one."""
    import math

    h = loss_history(history)
    losses = h["train_loss"] + h["eval_loss"]
    return {
        "eval_loss_fell": len(h["eval_loss"]) >= 2 and h["eval_loss"][-1] < h["eval_loss"][0],
        "losses_finite": bool(losses) and all(math.isfinite(x) for x in losses),
        "reloaded_answers_identical": reloaded_answers == after.table["answer"].tolist(),
    }


def write_outputs(lab: Lab, data: LabData, history: list[dict], before: Evaluation, after: Evaluation,
                  reloaded: Evaluation, result: dict, plan: PlanReport) -> dict:
    """answers.csv, probe.csv, loss_curve.png and summary.json in the output folder; returns the summary."""
    out = lab.output_dir
    answers = before.table[["prompt", "reference"]].copy()
    answers["before"], answers["after"] = before.table["answer"], after.table["answer"]
    answers["reloaded"] = reloaded.table["answer"]
    answers.to_csv(out / "answers.csv", index=False)
    probe = before.probe_table[["prompt", "reference"]].copy()
    probe["before"], probe["after"] = before.probe_table["answer"], after.probe_table["answer"]
    probe.to_csv(out / "probe.csv", index=False)
    ax = plot_losses(history, title=f"{lab.profile.model_id} ({lab.profile.name})")
    ax.figure.savefig(out / "loss_curve.png", dpi=120, bbox_inches="tight")
    h = loss_history(history)
    summary = {
        "profile": lab.profile.name, "model": lab.profile.model_id, "output_dir": str(out), "data": data.note,
        "plan_gib": None if plan.plan is None else plan.plan.total / 2**30, "longest_tokens": plan.longest,
        "train_loss": h["train_loss"], "eval_loss": h["eval_loss"],
        "eval_loss_first": h["eval_loss"][0] if h["eval_loss"] else None,
        "eval_loss_last": h["eval_loss"][-1] if h["eval_loss"] else None,
        "rouge_before": before.means, "rouge_after": after.means,
        "probe_rouge_before": before.probe_means, "probe_rouge_after": after.probe_means,
        **result,
    }
    (out / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    return summary


def run(profile: Profile, output_dir: str | Path | None = None, fresh: bool = False, data: str | None = None,
        validation: str | None = None) -> dict:
    """Every step in order: the whole lab. Returns the summary (also written to summary.json)."""
    t0 = time.time()
    free_memory()  # leftovers of an earlier run in this process
    lab = prepare(profile, output_dir, data, validation)
    main = is_main_process()
    say = print if main else (lambda *a, **k: None)
    lab_data = load_data(lab)
    say(lab_data.note)
    tokenizer = load_tokenizer(lab.profile, lab.token)
    say("Loss:", resolve_loss(lab.profile, tokenizer).reason)
    plan = plan_memory(lab, tokenizer, lab_data)
    say(plan.text)
    if fresh and main:
        backup = backup_outputs(lab.output_dir)
        if backup:
            say(f"--fresh: kết quả cũ được chuyển sang {backup} (không xóa).")
    wait_for_everyone()  # every process sees the same checkpoints before deciding to resume
    model, tokenizer = load_model(lab)
    before = evaluate(model, tokenizer, lab, lab_data) if main else None
    trainer, resumed = train(model, tokenizer, lab, lab_data)
    if resumed:
        say(f"Đã tiếp tục từ checkpoint {resumed}")
    history, steps = trainer.state.log_history, trainer.state.global_step
    adapter_dir = save(trainer, lab)  # written by the main process only
    if not main:  # other processes only train: evaluation and files are rank 0's
        return {"steps": steps}
    after = evaluate(trainer.model, tokenizer, lab, lab_data)
    del trainer, model
    free_memory()
    reloaded_model, tokenizer = reload(lab, adapter_dir)
    reloaded = evaluate(reloaded_model, tokenizer, lab, lab_data, probe=False)
    result = {"steps": steps, "resumed_from": resumed, **checks(history, before, after, reloaded.table["answer"].tolist())}
    result["seconds"] = time.time() - t0
    summary = write_outputs(lab, lab_data, history, before, after, reloaded, result, plan)
    if not summary["eval_loss_fell"]:
        say("Lưu ý: loss kiểm định không giảm. Với ít bước huấn luyện điều này có thể xảy ra; nếu không, hãy thử "
            "learning_rate nhỏ hơn hoặc kiểm tra dữ liệu.")
    if not summary["losses_finite"]:
        say("Lưu ý: có loss không hữu hạn (NaN/inf): xem chương 9, mục fp16.")
    return summary


def chat(lab: Lab, questions, max_new_tokens: int | None = None, system: str | None = SYSTEM_PROMPT) -> list[str]:
    """Answer each question with the trained adapter (base + adapter, not merged), streamed token by token."""
    from .models import stream_answer

    model, tokenizer = reload(lab)
    answers = []
    for question in questions:
        print(f"\n>>> {question}")
        answers.append(stream_answer(model, tokenizer, question, max_new_tokens or lab.profile.eval_max_new_tokens,
                                     system=system))
    return answers


# ---------------------------------------------------------------- command line

class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own errors, in Vietnamese, exit status 2
        self.exit(2, f"Lỗi tham số: {message}\nXem: python -m course_utils.lab --help\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'"{text}" không phải số nguyên. Hãy dùng một số nguyên dương, ví dụ 10.')
    if value <= 0:
        raise argparse.ArgumentTypeError(f"cần một số nguyên dương (≥ 1), không phải {value}.")
    return value


def parser() -> argparse.ArgumentParser:
    ap = _Parser(description="Bài thực hành QLoRA của khóa học (không cần notebook).")
    ap.add_argument("--profile", default=None,
                    help=f"{', '.join(sorted(PROFILES))}; mặc định: $COURSE_PROFILE, nếu không thì t4 khi có GPU, tiny khi không")
    ap.add_argument("--model-id", default=None, help="tên mô hình trên Hub hoặc thư mục mô hình trên máy (mọi LM nhân quả)")
    ap.add_argument("--data", default=None,
                    help="dữ liệu của bạn: tệp .jsonl/.json (Alpaca, ShareGPT, messages), thư mục, hoặc tên trên Hub")
    ap.add_argument("--validation", default=None, help="tập kiểm định riêng; mặc định tách 90/10 từ --data")
    ap.add_argument("--output-dir", default=None)
    ap.add_argument("--max-steps", type=_positive_int, default=None)
    ap.add_argument("--max-length", type=_positive_int, default=None)
    ap.add_argument("--batch-size", type=_positive_int, default=None, help="per_device_train_batch_size (mỗi GPU)")
    ap.add_argument("--save-steps", type=_positive_int, default=None)
    ap.add_argument("--set", action="append", default=[], metavar="TÊN=GIÁ_TRỊ",
                    help="đổi một trường bất kỳ của profile, ví dụ --set lora_r=8 --set learning_rate=1e-4")
    ap.add_argument("--fresh", action="store_true", help="bắt đầu lại từ bước 0 (kết quả cũ được chuyển sang bên, không xóa)")
    ap.add_argument("--chat", action="store_true", help="trò chuyện với adapter đã huấn luyện trong --output-dir")
    ap.add_argument("--ask", action="append", default=None,
                    help="với --chat: một câu hỏi (lặp lại được); không có thì đọc từng dòng từ bàn phím")
    return ap


def main(argv=None) -> int:
    from .compat import cpu_processes_use_gloo, quiet_logs

    a = parser().parse_args(argv)
    quiet_logs()
    cpu_processes_use_gloo()  # accelerate launch on a CPU (the CI test of the two-GPU path)
    try:
        profile = get_profile(a.profile)
        changes = {k: v for k, v in (("max_steps", a.max_steps), ("model_id", a.model_id), ("max_length", a.max_length),
                                     ("per_device_train_batch_size", a.batch_size), ("save_steps", a.save_steps))
                   if v is not None}
        if changes:
            profile = profile.replace(**changes)
        profile = profile.with_settings(a.set)
        if a.chat:
            lab = prepare(profile, a.output_dir)
            questions = a.ask or (line.strip() for line in sys.stdin if line.strip())
            chat(lab, questions)
            return 0
        summary = run(profile, a.output_dir, fresh=a.fresh, data=a.data, validation=a.validation)
    except CourseError as e:
        print(f"Lỗi: {e}", file=sys.stderr)
        return 2
    if is_main_process():
        print(json.dumps(summary, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
