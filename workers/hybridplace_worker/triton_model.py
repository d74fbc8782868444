"""The Triton python-backend model that hybridplace-worker puts in every model repository.

It runs inside Triton's python backend stub (which provides ``triton_python_backend_utils``) and
needs only torch and numpy. It is copied as ``<model>/1/model.py``; its settings come from the
``parameters`` of ``config.pbtxt``: ``hp_artifact`` (file in the version directory),
``hp_format`` (``torchscript`` or ``torch-export``) and ``hp_threads`` (torch intra-op threads
per instance, 0 = torch's default).

Dynamic batching hands ``execute`` several requests at once; they are concatenated along the
batch dimension, run as one forward pass and split again, which is where batching pays off.

Tensors cross the backend boundary by DLPack (``to_dlpack``/``from_dlpack``), never through numpy:
the stub's numpy bridge is built against numpy 1.x, and under numpy 2 it returned empty output
tensors (seen on an H200 machine whose Python had numpy 2.5: every response had 0 bytes).
"""

import json
import os
import time

import torch
import triton_python_backend_utils as pb_utils  # provided by the python backend stub


def _flatten(out):
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (list, tuple)):
        return [t for item in out for t in _flatten(item)]
    if isinstance(out, dict):
        return [t for key in sorted(out) for t in _flatten(out[key])]
    raise TypeError(f"model output of type {type(out).__name__} is not a tensor")


def _to_torch(tensor):
    """A request's input as a torch tensor on the host (its own copy: Triton reuses the buffer)."""
    return torch.utils.dlpack.from_dlpack(tensor.to_dlpack()).to("cpu", copy=True)


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        threads = int(params.get("hp_threads", "0") or 0)
        if threads > 0:
            torch.set_num_threads(threads)
        if args.get("model_instance_kind") == "GPU":
            self.device = torch.device(f"cuda:{int(args['model_instance_device_id'])}")
        else:
            self.device = torch.device("cpu")
        path = os.path.join(args["model_repository"], args["model_version"], params["hp_artifact"])
        self.input_names = [i["name"] for i in config["input"]]
        self.output_names = [o["name"] for o in config["output"]]
        self.delay = None
        if params.get("hp_format") == "delay":  # builtin:delay: sleep for the service time
            with open(path) as f:
                spec = json.load(f)
            scale = float(os.environ.get("HP_DELAY_SCALE") or 1.0)
            self.delay = (spec["baseMs"] * scale, spec["perItemMs"] * scale)
            return
        if params.get("hp_format", "torchscript") == "torch-export":
            program = torch.export.load(path)
            if self.device.type != "cpu":
                program = torch.export.passes.move_to_device_pass(program, str(self.device))
            self.model = program.module()
        else:
            self.model = torch.jit.load(path, map_location=self.device).eval()

    def execute(self, requests):
        try:
            tensors = [
                [_to_torch(pb_utils.get_input_tensor_by_name(r, name)) for name in self.input_names] for r in requests
            ]
            sizes = [t[0].shape[0] for t in tensors]
            batch = [torch.cat([t[i] for t in tensors]) for i in range(len(self.input_names))]
            if self.delay is not None:
                base_ms, per_item_ms = self.delay
                time.sleep((base_ms + per_item_ms * batch[0].shape[0]) / 1000.0)
                outs = [batch[0].sum(dim=1, keepdim=True)]
            else:
                with torch.inference_mode():
                    outs = _flatten(self.model(*[t.to(self.device) for t in batch]))
            outs = [o.detach().cpu() for o in outs]
        except Exception as exc:  # every request of the batch gets the error, Triton stays up
            # The model's failure, not the server's: INVALID_ARG (HTTP 400), which the worker
            # reports as InputMismatch and the Job does not retry; the default code, INTERNAL
            # (HTTP 500), reads as the server's and is retried to the same end. Out of memory is
            # told by its text, whatever the code.
            code = getattr(pb_utils.TritonError, "INVALID_ARG", None)
            text = f"{type(exc).__name__}: {exc}"
            error = pb_utils.TritonError(text) if code is None else pb_utils.TritonError(text, code)
            return [pb_utils.InferenceResponse(output_tensors=[], error=error) for _ in requests]
        responses = []
        start = 0
        for size in sizes:
            tensors = [
                pb_utils.Tensor.from_dlpack(name, torch.utils.dlpack.to_dlpack(o[start : start + size].contiguous()))
                for name, o in zip(self.output_names, outs, strict=True)
            ]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            start += size
        return responses
