"""The chat templates the converter writes into GGUF files render the prompt formats of the model cards
(../shared/reference/prompts.md: rinna instruction-sft, RedPajama-INCITE-Chat, databrickslabs/dolly
training/consts.py)."""

from __future__ import annotations

from jinja2.sandbox import ImmutableSandboxedEnvironment

from neox_cpp.convert_vocab import DOLLY_TEMPLATE, REDPAJAMA_CHAT_TEMPLATE, RINNA_TEMPLATE

DOLLY_INTRO = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request."
)


def render(template: str, messages: list[dict[str, str]]) -> str:
    env = ImmutableSandboxedEnvironment()  # what llama-cpp-python renders GGUF templates with
    return env.from_string(template).render(messages=messages, add_generation_prompt=True)


def test_redpajama_chat_keeps_the_newline_between_turns() -> None:
    one = [{"role": "user", "content": "Who is Alan Turing?"}]
    assert render(REDPAJAMA_CHAT_TEMPLATE, one) == "<human>: Who is Alan Turing?\n<bot>:"
    more = one + [{"role": "assistant", "content": "A mathematician."}, {"role": "user", "content": "And?"}]
    assert render(REDPAJAMA_CHAT_TEMPLATE, more) == (
        "<human>: Who is Alan Turing?\n<bot>: A mathematician.\n<human>: And?\n<bot>:"
    )


def test_dolly_prompt_is_the_training_format() -> None:
    out = render(DOLLY_TEMPLATE, [{"role": "user", "content": "Say hi."}])
    assert out == DOLLY_INTRO + "\n\n### Instruction:\nSay hi.\n\n### Response:\n"


def test_rinna_maps_newlines_to_nl_token() -> None:
    msgs = [{"role": "user", "content": "一行目\n二行目"}, {"role": "assistant", "content": "はい"},
            {"role": "user", "content": "次"}]
    expected = "ユーザー: 一行目<NL>二行目<NL>システム: はい<NL>ユーザー: 次<NL>システム: "
    assert render(RINNA_TEMPLATE, msgs) == expected
