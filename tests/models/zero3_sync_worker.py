"""One rank of ``test_zero3_sync.py``: generation and scoring on a model whose every forward is a collective.

Simulates ZeRO-3 on CPU (gloo): parameters carry DeepSpeed's ``ds_id`` mark and a forward pre-hook runs an
all-reduce, as ZeRO-3's parameter gathers do. Rank 1 stops generating after one token and scores fewer
pairs than rank 0, so a rank that ran fewer forwards than the other would leave it waiting forever.
Usage: python zero3_sync_worker.py <tokenizer dir> <result json>   (RANK, WORLD_SIZE, MASTER_* set)
"""

import dataclasses
import json
import os
import sys
from pathlib import Path

import torch
from torch import distributed as dist
from transformers import PreTrainedTokenizerFast

from emoreason.models.continuations import continuation_logprobs
from emoreason.models.decoding import CausalLM, greedy_generate
from emoreason.models.targets import LABEL_TASK, Pieces
from tests.support.reasoning import tiny_backbone

COMMENTS = ["정말 고맙습니다", "어이가 없네 진짜", "오늘 날씨 좋다", "이게 말이 되나요"]


def main() -> None:
    tokenizer_dir, result_path = sys.argv[1], Path(sys.argv[2])
    rank = int(os.environ["RANK"])
    dist.init_process_group("gloo")
    tokenizer = PreTrainedTokenizerFast.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    model = CausalLM(tiny_backbone(init_seed=0).load_network(tokenizer), Pieces.of(tokenizer)).eval()
    encoded = tokenizer([f"댓글: {c}\n" for c in COMMENTS], add_special_tokens=False)
    tokenizer.padding_side = "left"
    batch = dict(tokenizer.pad(encoded, return_tensors="pt"))
    pairs = [(ids, ids[:3]) for ids in encoded["input_ids"]] + [(encoded["input_ids"][0], [5, 6])]
    pairs = pairs if rank == 0 else pairs[:1]  # 3 passes of 2 pairs on rank 0, 1 pass on rank 1
    with torch.no_grad():
        expected = continuation_logprobs(model, pairs, batch_size=2)  # not partitioned yet: no syncing
        if rank == 1:  # make rank 1's first greedy token its end of sequence: it is done after one step
            first = model(batch["input_ids"], batch["attention_mask"])[:, -1].argmax(-1)
            model.pieces = dataclasses.replace(model.pieces, eos_id=int(first[0]))
            batch = {k: v[:1] for k, v in batch.items()}
        for i, param in enumerate(model.parameters()):
            param.ds_id = i  # DeepSpeed's mark on a ZeRO-3 partitioned parameter
        model.network.register_forward_pre_hook(lambda *_: dist.all_reduce(torch.zeros(1)))
        generations = greedy_generate(model, batch, LABEL_TASK, max_new_tokens=8)
        scored = continuation_logprobs(model, pairs, batch_size=2)
    dist.barrier()
    result_path.write_text(
        json.dumps(
            {
                "generated_tokens": [g.generated_tokens for g in generations],
                "scores_match": torch.allclose(scored, expected),
            }
        ),
        encoding="utf-8",
    )
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
