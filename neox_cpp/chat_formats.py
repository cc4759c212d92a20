"""Chat formats of the GPT-NeoX-family chat/instruct models, for ``Llama.create_chat_completion``.

Registered in llama-cpp-python's chat-format registry (``llama_cpp.llama_chat_format``) of the private
copy that ``neox_cpp`` runs on (which is also what ``import llama_cpp`` gives after ``neox_cpp.patch()``):

=========================  =====================================================================
name                       prompt
=========================  =====================================================================
``rinna``                  ``ユーザー: {u}<NL>システム: {a}<NL>ユーザー: {u}<NL>システム: `` (every
                           newline inside a message becomes ``<NL>``; the reply's ``<NL>`` are turned
                           back into newlines, also while streaming); no BOS. Stops: ``<NL>ユーザー:``,
                           ``</s>``.
``redpajama-incite-chat``  ``<human>: {u}\\n<bot>: {a}\\n<human>: {u}\\n<bot>:`` (the model card's form;
                           llama-cpp-python's own ``redpajama-incite`` starts with a newline). Stops:
                           ``<human>:``, ``<|endoftext|>``.
``dolly-v2``               databricks' generation prompt: intro blurb (or the system message), then
                           ``\\n\\n### Instruction:\\n{u}\\n\\n### Response:\\n``; earlier turns end with
                           ``\\n\\n### End``. Stops: ``### End``, ``<|endoftext|>``.
``stablelm-tuned-alpha``   ``<|SYSTEM|>{system}\\n<|USER|>{u}<|ASSISTANT|>{a}<|USER|>{u}<|ASSISTANT|>``
                           (the model card's system prompt by default). Stops: the role markers,
                           ``<|endoftext|>``.
=========================  =====================================================================

:func:`guess_chat_format` picks one of these from a GGUF's metadata (see docs/params.md, "Chat
formats"). Templates stored in the GGUF (``tokenizer.chat_template``) are handled by llama-cpp-python
itself (``chat_template.default``).
"""

from __future__ import annotations

import types
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple, Union

Message = Mapping[str, Any]
Stop = Optional[Union[str, List[str]]]

NL = "<NL>"
RINNA_USER = "ユーザー"
RINNA_SYSTEM = "システム"
DOLLY_INTRO = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the "
    "request."
)
STABLELM_SYSTEM = (
    "# StableLM Tuned (Alpha version)\n"
    "- StableLM is a helpful and harmless open-source AI language model developed by StabilityAI.\n"
    "- StableLM is excited to be able to help the user, but will refuse to do anything that could be "
    "considered harmful to the user.\n"
    "- StableLM is more than just an information source, StableLM is also able to write poetry, short "
    "stories, and make jokes.\n"
    "- StableLM will refuse to participate in anything that could harm a human."
)

RINNA = "rinna"
REDPAJAMA_CHAT = "redpajama-incite-chat"
DOLLY_V2 = "dolly-v2"
STABLELM_TUNED = "stablelm-tuned-alpha"
FORMAT_NAMES = (RINNA, REDPAJAMA_CHAT, DOLLY_V2, STABLELM_TUNED)


def message_text(message: Message) -> str:
    """The text of an OpenAI-style message (content may be None, a string or a list of parts)."""
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts: List[str] = []
    for part in content:
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, Mapping) and part.get("type") == "text":
            parts.append(str(part.get("text", "")))
    return "".join(parts)


def _system_text(messages: List[Message]) -> Optional[str]:
    texts = [message_text(m) for m in messages if m.get("role") == "system"]
    return "\n".join(texts) if texts else None


# --------------------------------------------------------------------------------------------------
# Prompt builders: messages -> (prompt, stop strings, added_special)


def rinna_prompt(messages: List[Message]) -> str:
    """rinna japanese-gpt-neox-3.6b-instruction-*: utterances joined by <NL>, newlines inside them
    replaced by <NL>, ending with ``システム: ``. A system message has no slot in the format: its text
    is put before the first user utterance (separated by a newline)."""
    system = _system_text(messages)
    parts: List[str] = []
    for m in messages:
        role = m.get("role")
        text = message_text(m)
        if role == "user":
            if system is not None:
                text, system = system + "\n" + text, None
            parts.append(f"{RINNA_USER}: {text}")
        elif role == "assistant":
            parts.append(f"{RINNA_SYSTEM}: {text}")
    if system is not None:  # no user message at all
        parts.insert(0, f"{RINNA_USER}: {system}")
    parts.append(f"{RINNA_SYSTEM}: ")
    return NL.join(p.replace("\n", NL) for p in parts)


def redpajama_chat_prompt(messages: List[Message]) -> str:
    """RedPajama-INCITE-Chat: ``<human>: …\\n<bot>: …\\n`` turns, ending with ``<bot>:``; a system
    message becomes a first line of its own."""
    system = _system_text(messages)
    out = [system + "\n"] if system else []
    for m in messages:
        role = m.get("role")
        if role == "user":
            out.append(f"<human>: {message_text(m)}\n")
        elif role == "assistant":
            out.append(f"<bot>: {message_text(m)}\n")
    out.append("<bot>:")
    return "".join(out)


def dolly_prompt(messages: List[Message]) -> str:
    """Dolly v2 (databrickslabs/dolly training/consts.py). The system message replaces the intro blurb;
    earlier exchanges use the training format (response followed by ``\\n\\n### End``)."""
    system = _system_text(messages)
    out = [system if system is not None else DOLLY_INTRO]
    pending_user = False
    for m in messages:
        role = m.get("role")
        if role == "user":
            if pending_user:  # two user turns in a row: the first one had no answer
                out.append("\n\n### End")
            out.append(f"\n\n### Instruction:\n{message_text(m)}\n\n### Response:\n")
            pending_user = True
        elif role == "assistant":
            if not pending_user:
                out.append("\n\n### Instruction:\n\n\n### Response:\n")
            out.append(f"{message_text(m)}\n\n### End")
            pending_user = False
    if not pending_user:
        out.append("\n\n### Instruction:\n\n\n### Response:\n")
    return "".join(out)


def stablelm_prompt(messages: List[Message]) -> str:
    """StableLM-Tuned-Alpha: ``<|SYSTEM|>`` block (the card's by default) then
    ``<|USER|>…<|ASSISTANT|>…`` turns, ending with ``<|ASSISTANT|>``."""
    system = _system_text(messages)
    out = [f"<|SYSTEM|>{system if system is not None else STABLELM_SYSTEM}\n"]
    for m in messages:
        role = m.get("role")
        if role == "user":
            out.append(f"<|USER|>{message_text(m)}")
        elif role == "assistant":
            out.append(f"<|ASSISTANT|>{message_text(m)}")
    out.append("<|ASSISTANT|>")
    return "".join(out)


# name -> (prompt builder, stop strings, added_special: True = no BOS is added to the prompt)
FORMATS: Dict[str, Tuple[Callable[[List[Message]], str], List[str], bool]] = {
    RINNA: (rinna_prompt, [NL + RINNA_USER + ":", "</s>"], True),
    REDPAJAMA_CHAT: (redpajama_chat_prompt, ["<human>:", "<|endoftext|>"], False),
    DOLLY_V2: (dolly_prompt, ["### End", "<|endoftext|>"], False),
    STABLELM_TUNED: (stablelm_prompt, ["<|USER|>", "<|SYSTEM|>", "<|endoftext|>"], False),
}


# --------------------------------------------------------------------------------------------------
# rinna: <NL> back to newlines in replies (whole and streamed)


def rinna_reply(text: str) -> str:
    return text.replace(NL, "\n")


def _held_back(text: str) -> int:
    """Length of the longest suffix of text that is a proper prefix of <NL> (may still become one)."""
    for n in range(min(len(NL) - 1, len(text)), 0, -1):
        if text.endswith(NL[:n]):
            return n
    return 0


def rinna_stream(chunks: Iterator[Dict[str, Any]]) -> Iterator[Dict[str, Any]]:
    """Chat-completion chunks with <NL> replaced by newlines, including an <NL> split over chunks."""
    pending = ""
    for chunk in chunks:
        choice = chunk["choices"][0]
        delta = choice.get("delta") or {}
        content = delta.get("content")
        if choice.get("finish_reason") is None and isinstance(content, str):
            text = pending + content
            keep = _held_back(text)
            pending = text[len(text) - keep:] if keep else ""
            out = rinna_reply(text[: len(text) - keep])
            if not out and choice.get("logprobs") is None:
                continue
            delta["content"] = out
            yield chunk
            continue
        if pending and choice.get("finish_reason") is not None:
            yield {**chunk, "choices": [{"index": choice.get("index", 0), "delta": {"content": pending},
                                         "logprobs": None, "finish_reason": None}]}
            pending = ""
        yield chunk


def _rinna_stops(stop: Stop) -> List[str]:
    stops = [] if stop is None else [stop] if isinstance(stop, str) else list(stop)
    mapped = [s.replace("\n", NL) for s in stops]
    return stops + [s for s in mapped if s not in stops]


# --------------------------------------------------------------------------------------------------
# Registration in a llama_chat_format module


def _formatter(chat_format: types.ModuleType, name: str) -> Callable[..., Any]:
    build, stops, added_special = FORMATS[name]

    def format_messages(*, messages: List[Message], **_: Any) -> Any:
        return chat_format.ChatFormatterResponse(prompt=build(messages), stop=list(stops),
                                                  added_special=added_special)

    format_messages.__name__ = "format_" + name.replace("-", "_")
    return format_messages


def _rinna_handler(chat_format: types.ModuleType) -> Callable[..., Any]:
    inner = chat_format.chat_formatter_to_chat_completion_handler(_formatter(chat_format, RINNA))

    def rinna_chat_handler(*, llama: Any, messages: List[Message], stop: Stop = None,
                           stream: bool = False, **kwargs: Any) -> Any:
        result = inner(llama=llama, messages=messages, stop=_rinna_stops(stop), stream=stream, **kwargs)
        if stream:
            return rinna_stream(result)
        for choice in result["choices"]:
            message = choice.get("message") or {}
            if isinstance(message.get("content"), str):
                message["content"] = rinna_reply(message["content"])
        return result

    return rinna_chat_handler


def register(chat_format: types.ModuleType) -> None:
    """Register every format of this module in ``chat_format`` (a llama_cpp.llama_chat_format module).
    Idempotent (existing registrations of these names are replaced)."""
    registry = chat_format.LlamaChatCompletionHandlerRegistry()
    for name in FORMAT_NAMES:
        if name == RINNA:
            handler = _rinna_handler(chat_format)
        else:
            handler = chat_format.chat_formatter_to_chat_completion_handler(_formatter(chat_format, name))
        registry.register_chat_completion_handler(name, handler, overwrite=True)


# --------------------------------------------------------------------------------------------------
# Picking a format from GGUF metadata

# Markers of a chat template written for one of the families (e.g. by neox_cpp.convert).
_TEMPLATE_MARKERS = (
    (RINNA, (NL, RINNA_USER, RINNA_SYSTEM)),
    (REDPAJAMA_CHAT, ("<human>:", "<bot>:")),
    (DOLLY_V2, ("### Instruction:", "### Response:")),
    (STABLELM_TUNED, ("<|USER|>", "<|ASSISTANT|>")),
)


def guess_chat_format(metadata: Mapping[str, str]) -> Optional[str]:
    """A format of this module for a GGUF's metadata, or None (leave llama-cpp-python's choice).

    1. ``tokenizer.chat_template`` present: one of ours only if the template is recognisably that
       family's prompt format (all of its markers appear in it); our handlers add the family's stop
       strings and, for rinna, turn ``<NL>`` back into newlines in replies.
    2. No template: from ``general.name`` / ``general.basename``: rinna instruction models
       (``rinna`` or ``japanese-gpt-neox`` with ``instruction``/``sft``/``ppo``), RedPajama-INCITE
       ``chat``, ``dolly``, ``stablelm-tuned``.
    """
    template = metadata.get("tokenizer.chat_template")
    if template:
        for name, markers in _TEMPLATE_MARKERS:
            if all(m in template for m in markers):
                return name
        return None
    name = " ".join(metadata.get(k, "") for k in ("general.name", "general.basename")).lower()
    rinna = "rinna" in name or "japanese-gpt-neox" in name
    if rinna and any(k in name for k in ("instruction", "sft", "ppo")):
        return RINNA
    if "redpajama" in name and "chat" in name:
        return REDPAJAMA_CHAT
    if "dolly" in name:
        return DOLLY_V2
    if "stablelm" in name and "tuned" in name:
        return STABLELM_TUNED
    return None
