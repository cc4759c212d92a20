"""The neox-cpp command line: `python -m neox_cpp SUBCOMMAND ...` (also installed as `neox-cpp`).

    neox-cpp convert HF_DIR -o OUT.gguf --outtype q8_0
    neox-cpp quantize IN.gguf OUT.gguf q4_0
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

OUT_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0")


def _cmd_convert(args: argparse.Namespace) -> int:
    from .convert import convert

    out = convert(args.hf_dir, args.outfile, args.outtype, name=args.name, progress=not args.quiet)
    print(f"wrote {out}", file=sys.stderr)
    return 0


def _cmd_quantize(args: argparse.Namespace) -> int:
    from .quantize import quantize_file

    out = quantize_file(args.infile, args.outfile, args.type, progress=not args.quiet)
    print(f"wrote {out}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neox-cpp", description="GPT-NeoX models on a CPU, via GGUF.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("convert", help="convert a Hugging Face GPTNeoXForCausalLM checkpoint to GGUF",
                       description="Convert a Hugging Face GPTNeoXForCausalLM checkpoint (config.json, "
                       "safetensors or pytorch_model.bin, tokenizer) to a GGUF file.")
    p.add_argument("hf_dir", metavar="HF_DIR", help="checkpoint directory")
    p.add_argument("-o", "--outfile", metavar="OUT.gguf", required=True, help="output file")
    p.add_argument("--outtype", choices=OUT_TYPES, default="f16", help="type of the matrices (default f16)")
    p.add_argument("--name", default=None, help="general.name (default: the directory name)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_convert)

    p = sub.add_parser("quantize", help="re-quantize a gptneox GGUF file",
                       description="Write a copy of a gptneox GGUF file with its matrices in another type.")
    p.add_argument("infile", metavar="IN.gguf")
    p.add_argument("outfile", metavar="OUT.gguf")
    p.add_argument("type", choices=OUT_TYPES)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_quantize)

    from .cli import add_subcommands

    add_subcommands(sub)  # run, chat
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .convert import ConvertError

    try:
        return int(args.func(args))
    except ConvertError as e:
        print(f"neox-cpp {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"neox-cpp {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
