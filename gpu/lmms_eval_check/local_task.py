"""Write an offline copy of one of lmms-eval's own general tasks, for checking a host without the hub.

    python gpu/lmms_eval_check/local_task.py OUT_DIR [--task realworldqa] [--rows 4]

lmms-eval's general tasks load their data from the Hugging Face hub. This writes a small
parquet in the task's own columns (pictures drawn here, questions with A-D options) and a
task folder whose YAML is the installed lmms-eval's own task YAML with only the data source
and the task name changed; its `utils.py` re-exports the installed task's functions, so
lmms-eval's own doc_to_visual, doc_to_text and process_results run on it. Then:

    python -m lmms_eval --model twinflow_echo --tasks realworldqa_local \
        --include_path OUT_DIR/tasks --output_path OUT --log_samples

(with LMMS_EVAL_PLUGINS=twinflow_check and gpu/lmms_eval_check on PYTHONPATH). It prints
the task name. Needs the lmms-eval environment (datasets, PIL).
"""

import argparse
import importlib.util
import json
from pathlib import Path

# Per task: the columns its utils read, filled for row i. Only tasks listed here are supported.
TASKS = {
    "realworldqa": lambda i, image: {
        "image": image,
        "question": f"Which corner of the picture is the square in?\nA. top left\nB. top right\nC. bottom left\nD. bottom right\n"
        "Please answer directly with only the letter of the correct option and nothing else.",
        "answer": "ABCD"[i % 4],
    },
}
# Keys of the task YAML that say where the data comes from, replaced by the local parquet.
DATA_KEYS = ("dataset_path:", "dataset_name:", "dataset_kwargs:", "task:", "tag:")


def picture(i: int):
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (96, 64), (230, 230, 220))
    x, y = (8 if i % 2 == 0 else 64), (8 if i % 4 < 2 else 36)
    ImageDraw.Draw(image).rectangle([x, y, x + 20, y + 20], fill=(200, 40, 40))
    return image


def task_yaml(task: str) -> Path:
    spec = importlib.util.find_spec(f"lmms_eval.tasks.{task}")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"lmms-eval in this environment has no task folder lmms_eval/tasks/{task}")
    found = Path(next(iter(spec.submodule_search_locations))) / f"{task}.yaml"
    if not found.is_file():
        raise SystemExit(f"no {found}")
    return found


def without_data_keys(text: str) -> str:
    """The task YAML minus its top-level data-source keys (and their indented blocks)."""
    kept, skipping = [], False
    for line in text.splitlines():
        if line[:1] not in ("", " ", "\t", "-"):
            skipping = line.startswith(DATA_KEYS)
        if not skipping:
            kept.append(line)
    return "\n".join(kept) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--task", default="realworldqa", choices=sorted(TASKS))
    parser.add_argument("--rows", type=int, default=4)
    args = parser.parse_args()

    import datasets

    name = f"{args.task}_local"
    rows = [TASKS[args.task](i, picture(i)) for i in range(args.rows)]
    data = args.out / "data" / f"{name}.parquet"
    data.parent.mkdir(parents=True, exist_ok=True)
    features = datasets.Features({"image": datasets.Image(), "question": datasets.Value("string"), "answer": datasets.Value("string")})
    datasets.Dataset.from_list(rows, features=features).to_parquet(str(data))

    tasks = args.out / "tasks"
    tasks.mkdir(parents=True, exist_ok=True)
    upstream = task_yaml(args.task)
    header = (
        f"# lmms-eval's own {upstream.name} ({upstream}) on a local parquet; written by gpu/lmms_eval_check/local_task.py\n"
        f"dataset_path: parquet\ndataset_kwargs:\n  data_files:\n    test: {json.dumps(str(data.resolve()))}\ntask: {name}\n"
    )
    (tasks / f"{name}.yaml").write_text(header + without_data_keys(upstream.read_text()))
    (tasks / "utils.py").write_text(f"from lmms_eval.tasks.{args.task}.utils import *  # noqa: F401,F403\n")
    print(name)


if __name__ == "__main__":
    main()
