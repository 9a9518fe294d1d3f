"""A toy-sized Qwen2.5-VL model folder with random weights, for tests that need a real model
class, tokenizer and processor without a model hub.

    python gpu/toy_qwen2_5_vl.py OUT_DIR [--seed N]

OUT_DIR gets what `save_pretrained` writes for Qwen2.5-VL: config.json and
model.safetensors (a `Qwen2_5_VLForConditionalGeneration` of two text layers of width 64
and a vision tower of depth 2), generation_config.json, tokenizer.json and its config, the
Qwen2-VL image processor's and video processor's configs, and the chat template. So, offline,

    AutoProcessor.from_pretrained(OUT_DIR)
    AutoTokenizer.from_pretrained(OUT_DIR)
    Qwen2_5_VLForConditionalGeneration.from_pretrained(OUT_DIR)

load it, as verl's `hf_processor` / `hf_tokenizer` and its model loader do. The weights come
from `--seed` (default 0): the same seed writes the same weights.

The tokenizer is byte-level with no merges (every byte of text is one token, 256 in all)
plus Qwen's special tokens, so any text encodes and the vocabulary stays tiny. The chat
template follows Qwen2-VL's layout: a default system turn, `<|im_start|>ROLE\\n...<|im_end|>`
turns, and each image content item rendered as `<|vision_start|><|image_pad|><|vision_end|>`
(a video as `<|vision_start|><|video_pad|><|vision_end|>`); the processor then expands each
`<|image_pad|>` to one token per merged 28x28 patch of the resized image.

Needs torch and transformers (test/python/requirements-verl-torch.txt pins them); prints the
folder and the special token ids as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

# Qwen2-VL's turn layout, written for this toy: content is a string or a list of
# {"type": "text"|"image"|"video", ...} items. One line, so no whitespace control is needed
# (and none may eat the newlines the layout has).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}"
    "{{ message['content'] }}"
    "{% else %}"
    "{% for item in message['content'] %}"
    "{% if item['type'] == 'image' or 'image' in item or 'image_url' in item %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif item['type'] == 'video' or 'video' in item %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in item %}"
    "{{ item['text'] }}"
    "{% endif %}"
    "{% endfor %}"
    "{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}"
    "<|im_start|>assistant\n"
    "{% endif %}"
)

# Small enough that a test's images (32x32, resized by qwen_vl_utils to 56x56) give 4
# image tokens each, large enough for several images per prompt.
MIN_PIXELS = 4 * 28 * 28
MAX_PIXELS = 64 * 28 * 28


def build_tokenizer_json():
    """A byte-level tokenizer: 256 byte tokens, no merges, Qwen's special tokens after them."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], fuse_unk=False, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    return tok


def build(out: Path, seed: int = 0) -> dict:
    import torch
    from transformers import (
        AutoTokenizer,
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
    )

    out.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer_json()
    tok.save(str(out / "tokenizer.json"))
    ids = {t: tok.token_to_id(t) for t in SPECIAL_TOKENS}
    # Loaded back through AutoTokenizer so the class is Qwen2's, as the processor expects.
    (out / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "Qwen2Tokenizer",
        "model_max_length": 32768,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "bos_token": None,
        "unk_token": None,
        "clean_up_tokenization_spaces": False,
        "split_special_tokens": False,
        "add_prefix_space": False,
        "errors": "replace",
    }, indent=2))
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    tokenizer.chat_template = CHAT_TEMPLATE

    image_processor = Qwen2VLImageProcessor(
        min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS, patch_size=14, temporal_patch_size=2, merge_size=2,
    )
    extra = {}
    try:  # the Qwen2-VL video processor needs torchvision; without it the processor has images only
        from transformers import Qwen2VLVideoProcessor

        extra["video_processor"] = Qwen2VLVideoProcessor(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    except Exception:  # noqa: BLE001 - any import or backend error means: no video processor
        pass
    processor = Qwen2_5_VLProcessor(image_processor=image_processor, tokenizer=tokenizer, chat_template=CHAT_TEMPLATE, **extra)
    processor.save_pretrained(str(out))

    head_dim = 16  # hidden 64 / 4 heads; mrope sections split head_dim / 2 over (t, h, w)
    rope = {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [4, 2, 2]}
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": head_dim,
            "max_position_embeddings": 4096,
            "max_window_layers": 2,
            "rope_parameters": rope,
            "rope_scaling": {"type": "mrope", "mrope_section": rope["mrope_section"]},
            "tie_word_embeddings": True,
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": 64,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,
            "fullatt_block_indexes": [1],
            "in_channels": 3,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.save_pretrained(str(out))
    return {
        "dir": str(out),
        "seed": seed,
        "vocab_size": len(tokenizer),
        "parameters": sum(p.numel() for p in model.parameters()),
        "token_ids": ids,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write the model into")
    parser.add_argument("--seed", type=int, default=0, help="torch seed for the random weights (default 0)")
    args = parser.parse_args(argv)
    print(json.dumps(build(args.out, args.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
