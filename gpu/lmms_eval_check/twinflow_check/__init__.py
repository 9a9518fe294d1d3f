"""An lmms-eval plugin for checking a host's lmms-eval with fgvqa/predict, without model weights.

Use it with the real lmms-eval: `LMMS_EVAL_PLUGINS=twinflow_check` and this folder on
PYTHONPATH register the model `twinflow_echo`, which answers every query by reporting what
lmms-eval handed it (the image count, sizes and modes, the start of the question,
max_new_tokens and temperature). It is not a VLM and its answers score nothing.
"""
