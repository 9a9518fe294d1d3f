"""The lmms-eval task twinflow writes for fgvqa/predict (see activities/fgvqa/lmms-eval.ts).

Each doc is one FGVQA query as twinflow wrote it: {"id", "question", "images"}, the
image paths absolute. lmms-eval imports this file through the `!function utils.NAME`
tags of the task YAML beside it.
"""

from PIL import Image


def fgvqa_doc_to_visual(doc):
    """The query's images in its order (the reference first for multi queries), as RGB."""
    images = []
    for path in doc["images"]:
        with Image.open(path) as image:
            images.append(image.convert("RGB"))
    return images


def fgvqa_doc_to_text(doc, lmms_eval_specific_kwargs=None):
    """The query's question as is: it already carries the domain prompt and the answer-tag instruction."""
    return doc["question"]


def fgvqa_process_results(doc, results):
    """Scoring is fgvqa/score's job; lmms-eval's own metric only counts non-empty answers."""
    output = results[0] if results else ""
    return {"answered": 1.0 if output and output.strip() else 0.0}
