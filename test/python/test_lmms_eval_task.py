"""The utils.py of the lmms-eval task fgvqa/predict writes, called the way lmms-eval calls it.

Scenarios:
- It imports by file path, as lmms-eval resolves `!function utils.NAME`
  (lmms_eval/utils.py import_function: importlib spec_from_file_location).
- doc_to_visual opens the query's images from their paths, in order, as RGB.
- doc_to_text returns the question as is, with or without lmms_eval_specific_kwargs.
- process_results counts a non-empty answer, nothing more (fgvqa/score scores).
"""

import importlib.util
from pathlib import Path

from PIL import Image

UTILS = Path(__file__).resolve().parents[2] / "activities" / "fgvqa" / "lmms-eval-task" / "utils.py"


def load_utils():
    spec = importlib.util.spec_from_file_location("utils", UTILS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_images_come_from_the_query_paths_in_order(tmp_path):
    utils = load_utils()
    paths = []
    for i, (mode, colour) in enumerate([("RGB", (200, 10, 10)), ("L", 128), ("RGBA", (0, 0, 255, 128))]):
        path = tmp_path / f"{i}.png"
        Image.new(mode, (8 + i, 6), colour).save(path)
        paths.append(str(path))
    images = utils.fgvqa_doc_to_visual({"id": "m0", "question": "q", "images": paths})
    assert [im.size for im in images] == [(8, 6), (9, 6), (10, 6)]
    assert all(im.mode == "RGB" for im in images)
    assert images[0].getpixel((0, 0)) == (200, 10, 10)


def test_the_question_is_used_as_is():
    utils = load_utils()
    question = "Do these show the same bird?\nAnswer in <answer></answer> tags."
    doc = {"id": "p0", "question": question, "images": []}
    assert utils.fgvqa_doc_to_text(doc) == question
    assert utils.fgvqa_doc_to_text(doc, {"pre_prompt": "x", "post_prompt": "y"}) == question


def test_process_results_only_counts_answers():
    utils = load_utils()
    assert utils.fgvqa_process_results({}, ["<answer>yes</answer>"]) == {"answered": 1.0}
    assert utils.fgvqa_process_results({}, ["  "]) == {"answered": 0.0}
    assert utils.fgvqa_process_results({}, []) == {"answered": 0.0}
