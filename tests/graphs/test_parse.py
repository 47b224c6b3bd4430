"""Graph parsing and validation: every mistake is refused with a sentence naming the line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from argus.errors import BadInput
from argus.graphs.catalogue import Catalogue
from argus.graphs.parse import model_graph, parse_graph
from argus.graphs.spec import GraphSpec, ModelFacts

MODELS = {
    "efficientnet-lite0": ModelFacts("classify", frozenset({1}), frozenset({"production"})),
    "mtcnn": ModelFacts("faces", frozenset({1, 2}), frozenset({"production", "canary"})),
    "tint": ModelFacts("classify", frozenset({1}), frozenset({"production"})),
}


def parse(text: str, check_models: bool = True) -> GraphSpec:
    return parse_graph(
        textwrap.dedent(text), origin="portrait.yaml", lookup=MODELS.get, check_models=check_models
    )


PORTRAIT = """\
    question: portrait
    description: faces, and a colour for each
    steps:
      labels: {model: efficientnet-lite0, top_k: 5}
      faces:  {model: mtcnn@canary}
      aligned: {op: align, from: faces, size: 112}
      tint: {model: "tint:1", input: aligned, when: "faces.count > 0"}
      strong: {op: threshold, from: faces, min_score: 0.9}
      best: {op: top_k, from: labels, k: 1}
      boxes: {op: crop, from: strong, margin: 0.1, size: 64}
    answer: [labels, faces, tint, best, boxes]
    """


def test_a_valid_graph_keeps_lines_order_and_dependencies() -> None:
    spec = parse(PORTRAIT)
    assert spec.name == "portrait"
    assert spec.description == "faces, and a colour for each"
    order = list(spec.steps)
    assert order.index("faces") < order.index("aligned") < order.index("tint")
    assert order.index("strong") < order.index("boxes")
    tint = spec.steps["tint"]
    assert tint.line == 7 and tint.input == "aligned"
    assert tint.needs == ("aligned", "faces")
    assert str(tint.model) == "tint:1" and tint.model is not None and tint.model.version == 1
    assert spec.steps["faces"].model is not None and spec.steps["faces"].model.alias == "canary"
    assert spec.steps["aligned"].params == {"size": 112}
    assert spec.steps["boxes"].kind == "crops" and spec.steps["strong"].kind == "faces"
    assert spec.models() == ["efficientnet-lite0", "mtcnn", "tint"]
    assert spec.answer == ("labels", "faces", "tint", "best", "boxes") and not spec.single


def test_a_single_step_answer_is_that_steps_result() -> None:
    spec = model_graph("efficientnet-lite0", "classify")
    assert spec.single and spec.answer == ("labels",)
    assert spec.steps["labels"].model is not None
    assert spec.steps["labels"].model.name == "efficientnet-lite0"
    odd = model_graph("1e5", "faces")  # a name YAML would read as a number stays a name
    assert odd.models() == ["1e5"] and odd.answer == ("faces",)


ERRORS = [
    # (what, yaml, line, words in the message)
    (
        "unknown model",
        """\
        question: q
        steps:
          labels: {model: efficientnet-lite0}
          mood: {model: face-mood}
        """,
        4,
        "uses model 'face-mood', which is not registered",
    ),
    (
        "unknown version",
        "question: q\nsteps:\n  faces: {model: 'mtcnn:7'}\n",
        3,
        "model 'mtcnn' has no version 7",
    ),
    (
        "unknown alias",
        "question: q\nsteps:\n  faces: {model: mtcnn@beta}\n",
        3,
        "model 'mtcnn' has no alias 'beta'",
    ),
    (
        "cycle",
        """\
        question: q
        steps:
          faces: {model: mtcnn, when: "b.count > 0"}
          a: {op: threshold, from: faces, min_score: 0.5}
          b: {op: top_k, from: a, k: 1}
        answer: [b]
        """,
        3,
        "cycle (each needs the next): faces → b → a → faces",
    ),
    (
        "cycle through from",
        """\
        question: q
        steps:
          a: {op: threshold, from: b, min_score: 0.5}
          b: {op: top_k, from: a, k: 1}
        """,
        3,
        "cycle",
    ),
    (
        "missing step in from",
        """\
        question: q
        steps:
          faces: {model: mtcnn}
          aligned: {op: align, from: face}
        """,
        4,
        "reads step 'face' (from:), which the graph does not define",
    ),
    (
        "missing step in when",
        """\
        question: q
        steps:
          faces: {model: mtcnn}
          labels:
            model: efficientnet-lite0
            when: "face.count > 0"
        """,
        6,
        "no step named 'face'",
    ),
    (
        "missing step in answer",
        "question: q\nsteps:\n  faces: {model: mtcnn}\nanswer: [faces, mood]\n",
        4,
        "answer names step 'mood'",
    ),
    (
        "bad expression",
        """\
        question: q
        steps:
          faces: {model: mtcnn}
          labels: {model: efficientnet-lite0, when: "faces.count >> 0"}
        """,
        4,
        "when: expected a value but found '>' (column 14",
    ),
    (
        "expression of the wrong type",
        """\
        question: q
        steps:
          faces: {model: mtcnn}
          labels: {model: efficientnet-lite0, when: "faces.count"}
        """,
        4,
        "must be true or false",
    ),
    (
        "attribute the step does not have",
        """\
        question: q
        steps:
          faces: {model: mtcnn}
          labels: {model: efficientnet-lite0, when: "any faces.label in ['x']"}
        """,
        4,
        "step 'faces' answers faces, which have no 'label'",
    ),
    (
        "when reads its own step",
        "question: q\nsteps:\n  faces: {model: mtcnn, when: 'faces.count > 0'}\n",
        3,
        "cannot read its own result",
    ),
    (
        "unknown op",
        """\
        question: q
        steps:
          faces: {model: mtcnn}
          blur: {op: blur, from: faces}
        """,
        4,
        "unknown op 'blur'",
    ),
    (
        "unknown key",
        """\
        question: q
        steps:
          faces:
            model: mtcnn
            treshold: 0.5
        """,
        5,
        "a model step takes no 'treshold'",
    ),
    (
        "op on the wrong kind",
        """\
        question: q
        steps:
          labels: {model: efficientnet-lite0}
          aligned: {op: align, from: labels}
        """,
        4,
        "op align reads faces, but 'labels' answers labels",
    ),
    (
        "model input that is not crops",
        """\
        question: q
        steps:
          faces: {model: mtcnn}
          tint: {model: tint, input: faces}
        """,
        4,
        "input: needs crops",
    ),
    (
        "neither model nor op",
        "question: q\nsteps:\n  faces: {from: x}\n",
        3,
        "needs model: NAME or op:",
    ),
    (
        "both model and op",
        "question: q\nsteps:\n  faces: {model: mtcnn, op: crop}\n",
        3,
        "has both model: and op:",
    ),
    (
        "bad parameter",
        "question: q\nsteps:\n  labels:\n    model: efficientnet-lite0\n    top_k: lots\n",
        5,
        "top_k must be a whole number, not 'lots'",
    ),
    (
        "missing op parameter",
        "question: q\nsteps:\n  faces: {model: mtcnn}\n  t: {op: threshold, from: faces}\n",
        4,
        "op threshold needs min_score",
    ),
    (
        "step never used",
        "question: q\nsteps:\n  faces: {model: mtcnn}\n  labels: {model: efficientnet-lite0}\n"
        "answer: faces\n",
        4,
        "step 'labels' is neither in answer",
    ),
    (
        "bad step name",
        "question: q\nsteps:\n  my-step: {model: mtcnn}\n",
        3,
        "step name 'my-step'",
    ),
    (
        "duplicate step",
        "question: q\nsteps:\n  faces: {model: mtcnn}\n  faces: {model: mtcnn}\n",
        4,
        "has 'faces' twice",
    ),
    ("unknown top-level key", "question: q\nstep: {}\n", 2, "unknown key 'step'"),
    ("bad question name", "question: My Question\nsteps: {}\n", 1, "question name"),
    ("no steps", "question: q\nsteps: {}\n", 2, "steps: is empty"),
    ("not YAML", "question: q\nsteps:\n  faces: {model: mtcnn\n", 4, "not valid YAML"),
    (
        "bare name that is ambiguous",
        """\
        question: q
        steps:
          labels: {model: efficientnet-lite0}
          best: {op: top_k, from: labels, k: 1}
          faces: {model: mtcnn, when: "any label in ['cat']"}
        """,
        5,
        "steps labels, best all have it",
    ),
]


@pytest.mark.parametrize(("what", "text", "line", "words"), ERRORS, ids=[e[0] for e in ERRORS])
def test_mistakes_name_the_line(what: str, text: str, line: int, words: str) -> None:
    with pytest.raises(BadInput) as info:
        parse(text)
    message = info.value.message
    assert message.startswith(f"portrait.yaml, line {line}: "), message
    assert words in message, message


def test_unknown_models_pass_until_registration_checks_them() -> None:
    text = "question: q\nsteps:\n  mood: {model: face-mood}\n"
    assert parse(text, check_models=False).models() == ["face-mood"]
    with pytest.raises(BadInput, match=r"line 3: .*not registered"):
        parse(text)


def test_builtin_graphs_are_valid() -> None:
    from argus.graphs.catalogue import load_builtins

    graphs = load_builtins()
    assert {"labels", "faces", "describe"} <= set(graphs)
    assert graphs["labels"].single and graphs["faces"].single
    describe = graphs["describe"]
    assert describe.answer == ("labels", "faces", "aligned")
    assert describe.steps["aligned"].op == "align" and describe.steps["aligned"].source == "faces"
    parse(describe.text)  # also valid when the models are known


DEEP = "question: deep\nsteps:\n  a: " + "[" * 20_000 + "]" * 20_000 + "\n"


def test_a_graph_nested_thousands_deep_is_refused_naming_the_line() -> None:
    with pytest.raises(BadInput, match=r"portrait.yaml, line 3: nested more than 32 deep"):
        parse(DEEP)


def test_a_bad_file_never_hides_the_good_ones(tmp_path: Path) -> None:
    (tmp_path / "deep.yaml").write_text(DEEP)
    (tmp_path / "portrait.yaml").write_text(textwrap.dedent(PORTRAIT))
    catalogue = Catalogue(tmp_path, MODELS.get)
    assert set(catalogue.user()) == {"portrait"}
    assert catalogue.problems["deep.yaml"].startswith("deep.yaml, line 3: nested more than")


def test_a_text_step_is_gated_by_labels_and_gates_by_what_it_reads() -> None:
    models = {**MODELS, "ppocr": ModelFacts("text", frozenset({1}), frozenset({"production"}))}
    spec = parse_graph(
        textwrap.dedent(
            """\
            question: signs
            steps:
              labels: {model: efficientnet-lite0}
              text: {model: ppocr, when: "any labels.label in ['book jacket', 'menu', 'web site']"}
              words: {op: crop, from: text, margin: 0.05}
              exit: {model: tint, input: words, when: 'text.contains("EXIT") and text.count > 0'}
            answer: [labels, text, exit]
            """
        ),
        origin="signs.yaml",
        lookup=models.get,
        check_models=True,
    )
    assert spec.steps["text"].kind == "lines"
    assert spec.steps["text"].fields == frozenset({"box", "text", "score"})
    assert spec.steps["exit"].needs == ("words", "text")
    assert spec.steps["exit"].when is not None
    assert spec.steps["exit"].when.evaluate({"text": {"lines": [{"text": "exit"}], "text": "exit"}})
    with pytest.raises(BadInput, match=r"line 4: .*'labels' answers labels, which have no 'text'"):
        parse_graph(
            "question: q\nsteps:\n  labels: {model: efficientnet-lite0}\n"
            "  t: {model: tint, when: 'labels.contains(\"cat\")'}\nanswer: [labels, t]\n",
            origin="signs.yaml",
            lookup=models.get,
        )


WHO = """\
    question: who-else
    steps:
      faces: {model: mtcnn}
      aligned: {op: align, from: faces}
      vectors: {model: "tint:1", input: aligned}
      named: {op: who, from: faces, vectors: VECTORS}
    answer: named
    """


def test_a_who_op_reads_faces_and_their_embeddings() -> None:
    spec = parse(WHO.replace("VECTORS", "vectors"))
    named = spec.steps["named"]
    assert named.op == "who" and named.source == "faces"
    assert named.reads == {"vectors": ("vectors",)}
    assert set(named.needs) == {"faces", "vectors"}
    assert list(spec.steps).index("named") > list(spec.steps).index("vectors")
    assert spec.to_dict()["steps"]["named"]["vectors"] == "vectors"


@pytest.mark.parametrize(("text", "message"), [
    (WHO.replace(", vectors: VECTORS", ""), "op who needs vectors: STEP"),
    (WHO.replace("VECTORS", "nowhere"), r"reads step 'nowhere' \(vectors:\)"),
    (WHO.replace("VECTORS", "faces"), "vectors: needs a model step on crops"),
    (WHO.replace("from: faces, vectors", "from: aligned, vectors").replace("VECTORS", "vectors"),
     "op who reads"),
])
def test_who_op_mistakes_are_refused(text: str, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        parse(text)
