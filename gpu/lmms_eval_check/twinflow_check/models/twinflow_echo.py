"""A stand-in model: no weights, it reports what lmms-eval gave it for each request."""

from lmms_eval.api.model import lmms


class TwinflowEcho(lmms):
    def __init__(self, pretrained="twinflow/echo", **kwargs):
        super().__init__()
        self.pretrained = pretrained

    def generate_until(self, requests):
        answers = []
        for request in requests:
            context, gen_kwargs, doc_to_visual, doc_id, task, split = request.args
            visuals = doc_to_visual(self.task_dict[task][split][doc_id])
            sizes = ",".join(f"{v.size[0]}x{v.size[1]}:{v.mode}" for v in visuals)
            answers.append(
                f"{len(visuals)} images [{sizes}] question={context[:40]!r} "
                f"max_new_tokens={gen_kwargs.get('max_new_tokens')} temperature={gen_kwargs.get('temperature')} "
                "<answer>yes</answer>"
            )
        return answers

    def loglikelihood(self, requests):
        raise NotImplementedError("twinflow_echo only generates")

    def generate_until_multi_round(self, requests):
        raise NotImplementedError("twinflow_echo only generates")
