"""`neox-cpp run` and `neox-cpp chat`: generate text from the terminal (llama.cpp `main`-style flags).

    neox-cpp run -m MODEL.gguf -p "PROMPT" [-c 512] [-b 512] [-n -1] [-t N] [--temp 0.8] [--top_k 40]
                 [--top_p 0.95] [--repeat_last_n 64] [--repeat_penalty 1.1] [--seed -1] [--color]
                 [--verbose-prompt]
    neox-cpp chat -m MODEL.gguf [--chat_format NAME] [--system TEXT] [same sampling flags]

`run` prints the prompt, then streams the continuation as it is generated (stops at end of text, after
-n tokens, or when the context is full). `chat` reads one user message per line from stdin and streams
each reply in the model's chat format (picked from the GGUF, see docs/params.md); `/reset` forgets the
conversation, `/exit` (or end of input) quits. Both run on :class:`neox_cpp.Llama`.

`add_subcommands(subparsers)` adds both to an argparse sub-parser set (the `neox-cpp` entry point);
`python -m neox_cpp.cli run ...` works on its own too.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from typing import Any, Dict, List, Optional, TextIO

YELLOW = "\033[33m"
GREEN = "\033[32m"
RESET = "\033[0m"


def _add_common(p: argparse.ArgumentParser, n_predict: int) -> None:
    p.add_argument("-m", "--model", required=True, metavar="MODEL.gguf", help="GGUF model file")
    p.add_argument("-c", "--ctx_size", "--ctx-size", dest="ctx_size", type=int, default=512,
                   help="context size in tokens (default 512; 0 = the model's)")
    p.add_argument("-b", "--batch_size", "--batch-size", dest="batch_size", type=int, default=512,
                   help="tokens per batch when evaluating the prompt (default 512)")
    p.add_argument("-n", "--n_predict", "--n-predict", dest="n_predict", type=int, default=n_predict,
                   help=f"tokens to generate, -1 = until end of text or a full context (default {n_predict})")
    p.add_argument("-t", "--threads", type=int, default=None,
                   help="threads (default: half the CPUs, as llama-cpp-python)")
    p.add_argument("--temp", type=float, default=0.8, help="temperature, 0 = greedy (default 0.8)")
    p.add_argument("--top_k", "--top-k", dest="top_k", type=int, default=40,
                   help="top-k, 0 = off (default 40)")
    p.add_argument("--top_p", "--top-p", dest="top_p", type=float, default=0.95,
                   help="top-p, 1.0 = off (default 0.95)")
    p.add_argument("--min_p", "--min-p", dest="min_p", type=float, default=0.05,
                   help="min-p, 0 = off (default 0.05)")
    p.add_argument("--repeat_last_n", "--repeat-last-n", dest="repeat_last_n", type=int, default=64,
                   help="tokens considered by the repeat penalty (default 64)")
    p.add_argument("--repeat_penalty", "--repeat-penalty", dest="repeat_penalty", type=float, default=1.1,
                   help="repeat penalty, 1.0 = off (default 1.1)")
    p.add_argument("--seed", type=int, default=-1, help="sampling seed, -1 = random (default -1)")
    p.add_argument("--color", action="store_true", help="colour the prompt / user input")
    p.add_argument("--verbose-prompt", "--verbose_prompt", dest="verbose_prompt", action="store_true",
                   help="print the prompt's tokens to stderr before generating")


def add_subcommands(subparsers: Any) -> None:
    """Add `run` and `chat` to an argparse sub-parser set (from ArgumentParser.add_subparsers())."""
    p = subparsers.add_parser("run", help="generate text from a prompt",
                              description="Continue a prompt, streaming the text to the terminal.")
    _add_common(p, n_predict=-1)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("-p", "--prompt", help="the prompt")
    src.add_argument("-f", "--file", help="read the prompt from this file")
    p.set_defaults(func=cmd_run)

    p = subparsers.add_parser("chat", help="chat with a model in its chat format",
                              description="Interactive chat: one user message per line on stdin; "
                                          "/reset forgets the conversation, /exit quits.")
    _add_common(p, n_predict=256)
    p.add_argument("--chat_format", "--chat-format", dest="chat_format", default=None,
                   help="chat format name (default: from the GGUF metadata)")
    p.add_argument("--system", default=None, help="system message")
    p.set_defaults(func=cmd_chat)


# --------------------------------------------------------------------------------------------------


class _Out:
    """UTF-8 output that is flushed after every write (streams through pipes as well)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.buffer = getattr(stream, "buffer", None)

    def write(self, text: str) -> None:
        if self.buffer is not None:
            self.buffer.write(text.encode("utf-8"))
            self.buffer.flush()
        else:
            self.stream.write(text)
        self.stream.flush()


def _seed(args: argparse.Namespace) -> int:
    return args.seed if args.seed >= 0 else random.SystemRandom().randrange(2**32)


def _load(args: argparse.Namespace, seed: int, **extra: Any) -> Any:
    if not os.path.isfile(args.model):
        raise FileNotFoundError(f"model file not found: {args.model}")
    from neox_cpp.llama import Llama

    return Llama(model_path=args.model, n_ctx=args.ctx_size, n_batch=args.batch_size, n_threads=args.threads,
                 seed=seed, last_n_tokens_size=args.repeat_last_n, verbose=False, **extra)


def _sampling(args: argparse.Namespace, seed: int) -> Dict[str, Any]:
    return dict(max_tokens=args.n_predict, temperature=args.temp, top_k=args.top_k, top_p=args.top_p,
                min_p=args.min_p, repeat_penalty=args.repeat_penalty, seed=seed)


def _print_tokens(llm: Any, text: str, err: _Out) -> None:
    tokens = llm.tokenize(text.encode("utf-8"), add_bos=llm._model.add_bos_token(), special=True)
    err.write(f"\nprompt: {text!r}\nnumber of tokens in prompt = {len(tokens)}\n")
    for t in tokens:
        piece = llm.detokenize([t], special=True).decode("utf-8", errors="backslashreplace")
        err.write(f"{t:6d} -> {piece!r}\n")
    err.write("\n")


def cmd_run(args: argparse.Namespace) -> int:
    out, err = _Out(sys.stdout), _Out(sys.stderr)
    if args.file is not None:
        with open(args.file, encoding="utf-8") as f:
            prompt = f.read()
    else:
        prompt = args.prompt
    seed = _seed(args)
    err.write(f"seed = {seed}\n")
    try:
        llm = _load(args, seed)
    except (OSError, ValueError) as e:
        err.write(f"neox-cpp run: error: {e}\n")
        return 1
    try:
        if args.verbose_prompt:
            _print_tokens(llm, prompt, err)
        out.write(f"{YELLOW}{prompt}{RESET}" if args.color else prompt)
        finish = None
        for chunk in llm.create_completion(prompt, stream=True, **_sampling(args, seed)):
            choice = chunk["choices"][0]
            if choice["text"]:
                out.write(choice["text"])
            finish = choice["finish_reason"] or finish
        out.write("\n")
        err.write(f"[end: {'end of text' if finish == 'stop' else 'length'}]\n")
        return 0
    except ValueError as e:  # e.g. the prompt does not fit the context
        err.write(f"neox-cpp run: error: {e}\n")
        return 1
    except KeyboardInterrupt:
        out.write("\n")
        return 130
    finally:
        llm.close()


def _read_line(stdin: TextIO, out: _Out, interactive: bool, color: bool) -> Optional[str]:
    if interactive:
        out.write(f"{YELLOW}> {RESET}" if color else "> ")
    line = stdin.readline()
    return None if line == "" else line.rstrip("\r\n")


def cmd_chat(args: argparse.Namespace) -> int:
    out, err = _Out(sys.stdout), _Out(sys.stderr)
    seed = _seed(args)
    try:
        extra = {"chat_format": args.chat_format} if args.chat_format else {}
        llm = _load(args, seed, **extra)
    except (OSError, ValueError) as e:
        err.write(f"neox-cpp chat: error: {e}\n")
        return 1
    interactive = sys.stdin.isatty()
    err.write(f"seed = {seed}, chat format: {llm.chat_format}\n")
    base: List[Dict[str, str]] = [{"role": "system", "content": args.system}] if args.system else []
    history: List[Dict[str, str]] = list(base)
    sampling = _sampling(args, seed)
    try:
        while True:
            line = _read_line(sys.stdin, out, interactive, args.color)
            if line is None or line.strip() in ("/exit", "/quit"):
                return 0
            if line.strip() == "/reset":
                history = list(base)
                continue
            if not line.strip():
                continue
            history.append({"role": "user", "content": line})
            if args.verbose_prompt:
                err.write(f"[{len(history)} messages]\n")
            try:
                reply = _stream_reply(llm, history, sampling, out, args.color)
            except ValueError as e:  # the conversation no longer fits the context: start over
                err.write(f"[{e}; conversation reset]\n")
                history = list(base) + [history[-1]]
                reply = _stream_reply(llm, history, sampling, out, args.color)
            history.append({"role": "assistant", "content": reply})
    except ValueError as e:
        err.write(f"neox-cpp chat: error: {e}\n")
        return 1
    except KeyboardInterrupt:
        out.write("\n")
        return 130
    finally:
        llm.close()


def _stream_reply(llm: Any, messages: List[Dict[str, str]], sampling: Dict[str, Any], out: _Out,
                  color: bool) -> str:
    parts: List[str] = []
    if color:
        out.write(GREEN)
    for chunk in llm.create_chat_completion(messages=messages, stream=True, **sampling):
        text = chunk["choices"][0]["delta"].get("content") or ""
        if text:
            parts.append(text)
            out.write(text)
    out.write(f"{RESET}\n" if color else "\n")
    return "".join(parts)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="neox-cpp", description="Run GPT-NeoX GGUF models.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    add_subcommands(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
