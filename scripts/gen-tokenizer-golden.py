#!/usr/bin/python3
"""gen-tokenizer-golden.py: part of scripts/gen-tokenizer-golden.sh.

Runs the real SentencePiece library (Debian's python3-sentencepiece) on the
vocabularies the loader tests use, and writes expected token ids:

  llama2   llama2.c's tokenizer.bin (Llama-2 pieces with their SentencePiece
           scores) turned back into a SentencePiece BPE ModelProto
  mistral  mistral-tokenizer-js's vocabulary, scores derived from merge ranks
           (score of a piece = -(lowest rank of a merge that makes it))
  tok512   the vocabulary inside stories260K.gguf (pieces, scores, types)
  spm-bpe  a BPE model trained here with spm_train on text from GOROOT/doc

For the npm vocabularies it also keeps each package's own testCase vectors and
its encoder's output, and records where the references agree.

usage: gen-tokenizer-golden.py TMP_DIR OUT_DIR TEXTS_JSON TOKENIZER_BIN GGUF
"""
import gzip
import json
import os
import re
import struct
import subprocess
import sys

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as pb

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
BYTE_RE = re.compile(r"^<0x[0-9A-F]{2}>$")


def model_proto(tokens, scores, types):
    """A SentencePiece BPE model as Llama-2's tokenizer.model is configured:
    identity normalization, a dummy prefix, whitespace kept, byte fallback."""
    m = pb.ModelProto()
    ts = m.trainer_spec
    ts.model_type = pb.TrainerSpec.BPE
    ts.vocab_size = len(tokens)
    ts.byte_fallback = True
    ts.unk_id, ts.bos_id, ts.eos_id, ts.pad_id = 0, 1, 2, -1
    ns = m.normalizer_spec
    ns.name = "identity"
    ns.add_dummy_prefix = True
    ns.remove_extra_whitespaces = False
    ns.escape_whitespaces = True
    for t, s, ty in zip(tokens, scores, types):
        p = m.pieces.add()
        p.piece, p.score, p.type = t, s, ty
    sp = spm.SentencePieceProcessor()
    sp.LoadFromSerializedProto(m.SerializeToString())
    return sp


def sp_encode(sp, text):
    return sp.encode(text, add_bos=True)


def read_tokenizer_bin(path):
    """llama2.c's tokenizer.bin: int32 max_token_length, then per token
    float32 score, int32 length, bytes. llama2.c's exporter wrote "▁" as " "
    and the control pieces as "\\n<s>\\n" and "\\n</s>\\n"."""
    data = open(path, "rb").read()
    off = 4
    tokens, scores = [], []
    while off < len(data):
        score, n = struct.unpack_from("<fi", data, off)
        off += 8
        tokens.append(data[off:off + n].decode("utf-8"))
        scores.append(score)
        off += n
    # This copy's exporter also wrote byte piece <0xNN> (ids 3..258) as the
    # character U+00NN; check that and restore the SentencePiece spelling.
    for b in range(256):
        if tokens[3 + b] != chr(b):
            raise SystemExit(f"{path}: token {3 + b} is {tokens[3 + b]!r}, want byte {b:#x}")
    tokens = (["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)] +
              [t.replace(" ", "\u2581") for t in tokens[259:]])
    types = [UNKNOWN, CONTROL, CONTROL] + [BYTE] * 256 + [NORMAL] * (len(tokens) - 259)
    return tokens, scores, types


def read_gguf_vocab(path):
    """The tokenizer.ggml.* arrays of a GGUF file (v2/v3)."""
    f = open(path, "rb")
    data = f.read()
    if data[:4] != b"GGUF":
        raise SystemExit(f"{path}: not GGUF")
    off = 4
    version, n_tensors, n_kv = struct.unpack_from("<IQQ", data, off)
    off += 20
    scalar = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}

    def read_str(off):
        (n,) = struct.unpack_from("<Q", data, off)
        return data[off + 8:off + 8 + n].decode("utf-8"), off + 8 + n

    def read_val(ty, off):
        if ty in scalar:
            v = struct.unpack_from(scalar[ty], data, off)[0]
            return v, off + struct.calcsize(scalar[ty])
        if ty == 8:
            return read_str(off)
        if ty == 9:
            et, n = struct.unpack_from("<IQ", data, off)
            off += 12
            out = []
            for _ in range(n):
                v, off = read_val(et, off)
                out.append(v)
            return out, off
        raise SystemExit(f"{path}: unknown GGUF type {ty}")

    kv = {}
    for _ in range(n_kv):
        k, off = read_str(off)
        (ty,) = struct.unpack_from("<I", data, off)
        v, off = read_val(ty, off + 4)
        kv[k] = v
    return kv


def derived_scores(tj):
    """SentencePiece scores from an HF merge list: -(lowest rank making the piece)."""
    vocab = tj["model"]["vocab"]
    tokens = [None] * len(vocab)
    for t, i in vocab.items():
        tokens[i] = t
    best = {}
    for r, m in enumerate(tj["model"]["merges"]):
        a, b = m.split(" ")
        best.setdefault(a + b, r)
    n = len(tj["model"]["merges"])
    scores, types = [], []
    for i, t in enumerate(tokens):
        scores.append(-float(best.get(t, n + i)))
        if i == 0:
            types.append(UNKNOWN)
        elif i in (1, 2):
            types.append(CONTROL)
        elif BYTE_RE.match(t):
            types.append(BYTE)
        else:
            types.append(NORMAL)
    return tokens, scores, types


def vocab_json(source, tokens, scores, types, bos=1, eos=2, unk=0, add_bos=True):
    return {"source": source, "model": "llama", "tokens": tokens, "scores": scores,
            "types": types, "bos": bos, "eos": eos, "unk": unk, "add_bos": add_bos}


def main():
    tmp, out, texts_path, tokbin, gguf = sys.argv[1:6]
    texts = json.load(open(texts_path, encoding="utf-8"))
    sp_version = "sentencepiece " + spm.__version__
    golden = {}

    # --- Llama-2: tokenizer.bin scores (SentencePiece) and llama-tokenizer-js (merge ranks).
    tokens, scores, types = read_tokenizer_bin(tokbin)
    llama_sp = model_proto(tokens, scores, types)
    npm = json.load(open(os.path.join(tmp, "llama2.npm.json"), encoding="utf-8"))
    golden["llama2"] = merge_refs(npm, llama_sp, sp_version + " on llama2.c tokenizer.bin", texts)

    # --- Mistral: mistral-tokenizer-js (merge ranks); SentencePiece on derived scores.
    with gzip.open(os.path.join(out, "mistral.tokenizer.json.gz"), "rt", encoding="utf-8") as f:
        tj = json.load(f)
    mistral_sp = model_proto(*derived_scores(tj))
    npm = json.load(open(os.path.join(tmp, "mistral.npm.json"), encoding="utf-8"))
    golden["mistral"] = merge_refs(npm, mistral_sp, sp_version + " on scores derived from merge ranks", texts)

    # --- tok512 from stories260K.gguf.
    kv = read_gguf_vocab(gguf)
    tokens = kv["tokenizer.ggml.tokens"]
    scores = kv["tokenizer.ggml.scores"]
    types = kv["tokenizer.ggml.token_type"]
    tok512_sp = model_proto(tokens, scores, types)
    bos = kv.get("tokenizer.ggml.bos_token_id", 1)
    eos = kv.get("tokenizer.ggml.eos_token_id", 2)
    unk = kv.get("tokenizer.ggml.unknown_token_id", 0)
    with open(os.path.join(out, "tok512.vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab_json("stories260K.gguf (sha256 270cba1b...) tokenizer.ggml.*", tokens, scores, types,
                             bos, eos, unk, kv.get("tokenizer.ggml.add_bos_token", True)), f, ensure_ascii=False)
        f.write("\n")
    golden["tok512"] = [{"text": t, "ids": sp_encode(tok512_sp, t), "refs": [sp_version + " on stories260K.gguf vocab"]}
                        for t in texts + [c["text"] for c in npm["testCases"]]]

    with open(os.path.join(out, "cases.json"), "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, indent=1)
        f.write("\n")

    train_spm(tmp, out, texts)


def merge_refs(npm, sp, sp_name, texts):
    """One list of {text, ids, refs}: the package's vectors, then texts.json.
    ids are SentencePiece's; refs names every reference that agrees, and
    disagree holds any that does not."""
    out = []
    pkg = npm["source"]
    rows = [(c["text"], c["ids"], pkg + " testCase") for c in npm["testCases"]]
    rows += [(e["text"], e["ids"], pkg + " encode") for e in npm["encoded"]]
    for text, ids, name in rows:
        want = sp_encode(sp, text)
        row = {"text": text, "ids": want, "refs": [sp_name]}
        if ids == want:
            row["refs"].append(name)
        else:
            row["disagree"] = {name: ids}
            print(f"note: {name} differs from SentencePiece on {text[:40]!r}: {ids[:12]} vs {want[:12]}", file=sys.stderr)
        out.append(row)
    return out


def train_spm(tmp, out, texts):
    """Train a small BPE model with spm_train and encode held-out lines."""
    goroot = subprocess.check_output(["go", "env", "GOROOT"], text=True).strip()

    def plain(path):
        html = open(path, encoding="utf-8").read()
        html = re.sub(r"<[^>]*>", "", html)
        for a, b in (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"), ("&quot;", '"'), ("&nbsp;", "\u00a0")):
            html = html.replace(a, b)
        return [l for l in html.split("\n") if l.strip()]

    train = plain(os.path.join(goroot, "doc", "go_spec.html"))
    held = plain(os.path.join(goroot, "doc", "go_mem.html"))
    corpus = os.path.join(tmp, "spm-corpus.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        f.write("\n".join(train) + "\n")
    prefix = os.path.join(tmp, "spm-bpe")
    subprocess.check_call([
        "spm_train", "--input=" + corpus, "--model_prefix=" + prefix, "--model_type=bpe",
        "--vocab_size=1500", "--character_coverage=1.0", "--byte_fallback=true",
        "--normalization_rule_name=identity", "--remove_extra_whitespaces=false",
        "--add_dummy_prefix=true", "--allow_whitespace_only_pieces=true",
        "--split_digits=true", "--user_defined_symbols=<|user|>,<|end|>",
        "--max_sentence_length=100000", "--num_threads=1", "--minloglevel=2",
    ], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    m = pb.ModelProto()
    m.ParseFromString(open(prefix + ".model", "rb").read())
    tokens = [p.piece for p in m.pieces]
    scores = [p.score for p in m.pieces]
    types = [p.type for p in m.pieces]
    with open(os.path.join(out, "spm-bpe.vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab_json("spm_train " + spm.__version__ + " on GOROOT/doc/go_spec.html (identity, bpe, 1500)",
                             tokens, scores, types), f, ensure_ascii=False)
        f.write("\n")
    sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
    extra = ["<|user|> hello<|end|>", "x<|user|>y", " <|end|> ", "<|user|><|end|>"]
    lines = held[:300] + texts + extra
    # spm_encode itself, the command-line tool, on one-line inputs, as a cross-check of the API.
    one_line = [l for l in lines if "\n" not in l and "\r" not in l and l != ""]
    cli = subprocess.run(["spm_encode", "--model=" + prefix + ".model", "--output_format=id"],
                         input="\n".join(one_line) + "\n", capture_output=True, text=True, check=True).stdout.split("\n")
    for l, c in zip(one_line, cli):
        api = sp.encode(l)
        if [int(x) for x in c.split()] != api:
            raise SystemExit(f"spm_encode and the python API disagree on {l!r}")
    rows = [{"text": l, "ids": sp.encode(l, add_bos=True)} for l in lines]
    with open(os.path.join(out, "spm-bpe.cases.json"), "w", encoding="utf-8") as f:
        json.dump({"source": "sentencepiece " + spm.__version__ + " (spm_encode agrees on the one-line inputs)",
                   "cases": rows}, f, ensure_ascii=False, indent=0)
        f.write("\n")


if __name__ == "__main__":
    main()
