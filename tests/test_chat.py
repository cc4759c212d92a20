"""Chat formats (neox_cpp.chat_formats) and create_chat_completion on our engine.

References: the prompt strings of the model cards (rinna's card example, RedPajama's and databricks'
formats, see ../shared/reference/prompts.md), the Jinja templates neox_cpp.convert writes into GGUF files
rendered with jinja2, and, end to end, the token ids the model actually received (recorded by a logits
processor) compared with the tokenizer's ids for the expected prompt.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Dict, Iterator, List

import numpy as np
import pytest
from llm_models import converted

import neox_cpp
from neox_cpp import chat_formats as cf

pytestmark = pytest.mark.torch

RINNA_CARD_EXAMPLE = ("ユーザー: 日本のおすすめの観光地を教えてください。"
                      "<NL>システム: どの地域の観光地が知りたいですか?"
                      "<NL>ユーザー: 渋谷の観光地を教えてください。<NL>システム: ")
RINNA_MESSAGES = [
    {"role": "user", "content": "日本のおすすめの観光地を教えてください。"},
    {"role": "assistant", "content": "どの地域の観光地が知りたいですか?"},
    {"role": "user", "content": "渋谷の観光地を教えてください。"},
]


# --------------------------------------------------------------------------------------------------
# Prompt strings


def test_rinna_prompt_is_the_card_example() -> None:
    assert cf.rinna_prompt(RINNA_MESSAGES) == RINNA_CARD_EXAMPLE


def test_rinna_newlines_become_nl() -> None:
    prompt = cf.rinna_prompt([{"role": "system", "content": "丁寧に"},
                              {"role": "user", "content": "一行目\n二行目"}])
    assert "\n" not in prompt
    assert prompt == "ユーザー: 丁寧に<NL>一行目<NL>二行目<NL>システム: "


def _render(template: str, messages: List[Dict[str, Any]]) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.BaseLoader())
    return env.from_string(template).render(messages=messages, add_generation_prompt=True)


def test_rinna_prompt_agrees_with_converter_template() -> None:
    from neox_cpp import convert_vocab as cv

    assert cf.rinna_prompt(RINNA_MESSAGES) == _render(cv.RINNA_TEMPLATE, RINNA_MESSAGES)
    # REDPAJAMA_CHAT_TEMPLATE and DOLLY_TEMPLATE are not compared: their "{%-" tags strip newlines the
    # cards have (reported); guess_chat_format picks our formats for GGUFs carrying them.


def test_redpajama_and_dolly_single_turn_match_the_cards() -> None:
    assert cf.redpajama_chat_prompt([{"role": "user", "content": "Who is Alan Turing?"}]) == \
        "<human>: Who is Alan Turing?\n<bot>:"
    intro = ("Below is an instruction that describes a task. Write a response that appropriately "
             "completes the request.")
    assert cf.dolly_prompt([{"role": "user", "content": "Say hi."}]) == \
        intro + "\n\n### Instruction:\nSay hi.\n\n### Response:\n"
    assert cf.stablelm_prompt([{"role": "user", "content": "Hi"}]).endswith("\n<|USER|>Hi<|ASSISTANT|>")


def test_content_parts_and_none() -> None:
    msgs = [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            {"role": "assistant", "content": None}, {"role": "user", "content": "c"}]
    assert cf.rinna_prompt(msgs) == "ユーザー: ab<NL>システム: <NL>ユーザー: c<NL>システム: "


def _chunk(content: Any, finish: Any = None) -> Dict[str, Any]:
    delta = {} if content is None else {"content": content}
    return {"id": "x", "model": "m", "created": 0, "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}


@pytest.mark.parametrize("pieces", [["a<NL>b"], ["a<", "NL>b"], ["a<N", "L", ">b"], ["a", "<NL", ">", "b<"],
                                    ["<NL><NL>", "x<NL"]])
def test_rinna_stream_maps_nl_split_over_chunks(pieces: List[str]) -> None:
    chunks = [_chunk(p) for p in pieces] + [_chunk(None, "stop")]
    out = list(cf.rinna_stream(iter(chunks)))
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in out)
    assert text == "".join(pieces).replace("<NL>", "\n")
    assert out[-1]["choices"][0]["finish_reason"] == "stop"
    assert all("<NL>" not in c["choices"][0]["delta"].get("content", "") for c in out)


@pytest.mark.parametrize("metadata,expected", [
    ({"general.name": "japanese-gpt-neox-3.6b-instruction-sft"}, "rinna"),
    ({"general.name": "rinna-3.6b-ppo"}, "rinna"),
    ({"general.name": "japanese-gpt-neox-3.6b"}, None),
    ({"general.name": "RedPajama-INCITE-Chat-3B-v1"}, "redpajama-incite-chat"),
    ({"general.name": "RedPajama-INCITE-Base-3B-v1"}, None),
    ({"general.name": "dolly-v2-3b"}, "dolly-v2"),
    ({"general.name": "stablelm-tuned-alpha-3b"}, "stablelm-tuned-alpha"),
    ({"general.name": "pythia-70m"}, None),
    ({"general.name": "x", "tokenizer.chat_template": "{{ '<human>: ' }}{{ '<bot>:' }}"},
     "redpajama-incite-chat"),
    ({"general.name": "dolly", "tokenizer.chat_template": "{{ messages }}"}, None),
])
def test_guess_chat_format(metadata: Dict[str, str], expected: Any) -> None:
    assert cf.guess_chat_format(metadata) == expected


def test_formats_are_registered_in_the_private_registry() -> None:
    lcf = neox_cpp.llama_cpp().llama_chat_format
    for name in cf.FORMAT_NAMES:
        assert callable(lcf.get_chat_completion_handler(name))
    assert callable(lcf.get_chat_completion_handler("redpajama-incite"))  # llama-cpp-python's own
    cf.register(lcf)  # idempotent


# --------------------------------------------------------------------------------------------------
# Models: auto-picked formats and end-to-end chat


def _variant(kind: str, name: str, template: Any = None) -> Path:
    """A converted copy of the tiny model under another directory name (-> general.name and, through
    neox_cpp.convert, the family's chat template), optionally with a chat_template of its own."""
    if template is None:
        return converted(kind, name=name)[1]
    hf_dir, _ = converted(kind)
    out = Path(str(converted(kind, name=name)[1]).replace(".gguf", "-custom-template.gguf"))
    if not out.is_file():
        tmp_hf = out.parent / (name + "-custom")
        shutil.copytree(hf_dir, tmp_hf, dirs_exist_ok=True)
        cfg_path = tmp_hf / "tokenizer_config.json"
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
        cfg["chat_template"] = template
        cfg_path.write_text(json.dumps(cfg), encoding="utf-8")
        from neox_cpp.convert import convert

        convert(tmp_hf, out, "f32", progress=False)
    return out


def test_auto_picked_formats() -> None:
    cases = {
        ("spm", "rinna-japanese-gpt-neox-3.6b-instruction-sft"): "rinna",
        ("bpe", "redpajama-incite-chat-tiny"): "redpajama-incite-chat",
        ("bpe", "dolly-v2-tiny"): "dolly-v2",
    }
    for (kind, name), expected in cases.items():
        path = _variant(kind, name)
        llm = neox_cpp.Llama(model_path=str(path), n_ctx=64, verbose=False)
        try:
            assert llm.metadata.get("tokenizer.chat_template")  # written by the converter
            assert llm.chat_format == expected
        finally:
            llm.close()
        llm = neox_cpp.Llama(model_path=str(path), n_ctx=64, verbose=False, chat_format="chatml")
        try:
            assert llm.chat_format == "chatml"  # an explicit choice wins
        finally:
            llm.close()
    plain = neox_cpp.Llama(model_path=str(converted("bpe")[1]), n_ctx=64, verbose=False)
    try:
        assert plain.chat_format == "llama-2"  # llama-cpp-python's fallback, unchanged
    finally:
        plain.close()


class _Recorder:
    """Logits processor that records the context at the first call and then forces `reply` tokens."""

    def __init__(self, reply: List[int], eos: int) -> None:
        self.reply, self.eos = reply, eos
        self.prompt: List[int] = []

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if not self.prompt:
            self.prompt = [int(t) for t in input_ids]
        k = len(input_ids) - len(self.prompt)
        out = np.full_like(scores, -1e4)
        out[self.reply[k] if k < len(self.reply) else self.eos] = 1e4
        return out


def _chat(llm: Any, messages: List[Dict[str, Any]], reply: str, stream: bool) -> Any:
    rec = _Recorder(llm.tokenize(reply.encode(), add_bos=False, special=True), llm.token_eos())
    out = llm.create_chat_completion(messages=messages, max_tokens=64, temperature=0.0, stream=stream,
                                     logits_processor=neox_cpp.LogitsProcessorList([rec]))
    if stream:
        chunks = list(out)
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
        return rec.prompt, text, chunks[-1]["choices"][0]["finish_reason"]
    return rec.prompt, out["choices"][0]["message"]["content"], out["choices"][0]["finish_reason"]


@pytest.fixture(scope="module")
def rinna() -> Iterator[Any]:
    llm = neox_cpp.Llama(model_path=str(_variant("spm", "rinna-japanese-gpt-neox-3.6b-instruction-sft")),
                         n_ctx=512, verbose=False)
    yield llm
    llm.close()


@pytest.mark.parametrize("stream", [False, True])
def test_rinna_chat_end_to_end(rinna: Any, stream: bool) -> None:
    assert rinna.chat_format == "rinna"
    prompt, text, finish = _chat(rinna, RINNA_MESSAGES, "渋谷には<NL>ハチ公像があります。", stream)
    assert prompt == rinna.tokenize(RINNA_CARD_EXAMPLE.encode(), add_bos=False, special=True)  # no BOS
    assert text == "渋谷には\nハチ公像があります。"
    assert finish == "stop"


@pytest.mark.parametrize("stream", [False, True])
def test_rinna_stops_at_next_user_turn(rinna: Any, stream: bool) -> None:
    _, text, finish = _chat(rinna, RINNA_MESSAGES, "はい。<NL>ユーザー: 次の質問", stream)
    assert text == "はい。"
    assert finish == "stop"


@pytest.mark.parametrize("stream", [False, True])
def test_redpajama_chat_end_to_end(stream: bool) -> None:
    llm = neox_cpp.Llama(model_path=str(_variant("bpe", "redpajama-incite-chat-tiny")), n_ctx=256,
                         verbose=False)
    try:
        msgs = [{"role": "user", "content": "Who is the king?"}]
        prompt, text, finish = _chat(llm, msgs, " The king is dead.\n<human>: again", stream)
        assert prompt == llm.tokenize(b"<human>: Who is the king?\n<bot>:", add_bos=False, special=True)
        assert text == " The king is dead.\n"
        assert finish == "stop"
    finally:
        llm.close()


def test_dolly_chat_end_to_end() -> None:
    llm = neox_cpp.Llama(model_path=str(_variant("bpe", "dolly-v2-tiny")), n_ctx=256, verbose=False)
    try:
        msgs = [{"role": "user", "content": "Name a king."}]
        prompt, text, finish = _chat(llm, msgs, "Lear.\n\n### End\n\nmore", False)
        assert prompt == llm.tokenize(cf.dolly_prompt(msgs).encode(), add_bos=False, special=True)
        assert text == "Lear.\n\n"
        assert finish == "stop"
    finally:
        llm.close()


def test_gguf_template_is_used() -> None:
    """A template of the model's own (not one of the families) goes through llama-cpp-python's Jinja
    handler (chat_template.default)."""
    template = ("{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
                "{% if add_generation_prompt %}[assistant]{% endif %}")
    llm = neox_cpp.Llama(model_path=str(_variant("bpe", "custom-chat", template)), n_ctx=256, verbose=False)
    try:
        assert llm.chat_format == "chat_template.default"
        msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
        prompt, text, finish = _chat(llm, msgs, " Hello there", False)
        expected = _render(template, msgs)
        assert prompt == llm.tokenize(expected.encode(), add_bos=False, special=True)
        assert text == " Hello there"
        assert finish == "stop"
    finally:
        llm.close()
