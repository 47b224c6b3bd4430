"""Question graphs from YAML: parsing with line numbers and validation at registration.

Every mistake (unknown model, cycle, reference to a missing step, bad expression, unknown op
or key) is a :class:`~argus.errors.BadInput` whose message names the file and line, e.g.
``portrait.yaml, line 5: step 'mood' uses model 'face-mood', which is not registered``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node

from argus.errors import BadInput
from argus.graphs.expr import ATTRIBUTES, KEYWORDS, ExprError, parse_expression
from argus.graphs.spec import (
    CROP_FIELDS,
    CROP_OPS,
    MAX_STEPS,
    MODEL_REF,
    OPS,
    QUESTION_NAME,
    STEP_KEYS,
    STEP_NAME,
    STEP_REFS,
    GraphSpec,
    ModelFacts,
    ModelLookup,
    ModelRef,
    Step,
)
from argus.tasks import TASKS


def model_graph(name: str, task: str) -> GraphSpec:
    """The one-step graph that answers a model's own question."""
    known = TASKS.get(task)
    step_name = known.answer_kind if known is not None else "model"
    quoted = json.dumps(name)
    text = f"question: {quoted}\nsteps:\n  {step_name}: {{model: {quoted}}}\nanswer: {step_name}\n"
    return parse_graph(
        text,
        origin=f"model {name}",
        lookup=lambda n: ModelFacts(task) if n == name else None,
        description=f"{task} with model {name}",
    )


class _Where:
    """Formats messages as 'ORIGIN, line N: …'."""

    def __init__(self, origin: str) -> None:
        self.origin = origin

    def error(self, line: int, message: str) -> BadInput:
        return BadInput(f"{self.origin}, line {line}: {message}")


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _value(node: Node, where: _Where, what: str, mapping: bool = False) -> Any:
    if isinstance(node, MappingNode) and not mapping:
        raise where.error(_line(node), f"{what} must be a single value, not a mapping")
    try:
        return SafeConstructor().construct_object(node, deep=True)
    except ConstructorError as exc:
        raise where.error(_line(node), f"{what} cannot be read: {exc.problem}") from exc


def _pairs(node: Node, where: _Where, what: str) -> list[tuple[str, Node, int]]:
    if not isinstance(node, MappingNode):
        raise where.error(_line(node), f"{what} must be a mapping of names to values")
    seen: set[str] = set()
    out: list[tuple[str, Node, int]] = []
    for key_node, value_node in node.value:
        key = _value(key_node, where, "a key")
        if not isinstance(key, str):
            raise where.error(_line(key_node), f"keys of {what} must be names, not {key!r}")
        if key in seen:
            raise where.error(_line(key_node), f"{what} has {key!r} twice")
        seen.add(key)
        out.append((key, value_node, _line(key_node)))
    return out


def _int(value: Any, where: _Where, line: int, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise where.error(line, f"{what} must be a whole number, not {value!r}")
    if not low <= value <= high:
        raise where.error(line, f"{what} must be between {low} and {high}, not {value}")
    return value


def _float(value: Any, where: _Where, line: int, what: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise where.error(line, f"{what} must be a number, not {value!r}")
    if not low <= float(value) <= high:
        raise where.error(line, f"{what} must be between {low} and {high}, not {value}")
    return float(value)


def _name(value: Any, where: _Where, line: int, what: str) -> str:
    if not isinstance(value, str) or not STEP_NAME.match(value):
        raise where.error(line, f"{what} must name a step, not {value!r}")
    return value


def parse_model_ref(value: Any, where: _Where, line: int) -> ModelRef:
    match = MODEL_REF.match(value) if isinstance(value, str) else None
    if match is None:
        raise where.error(
            line,
            f"model must be NAME, NAME@alias or NAME:version (lower-case name), not {value!r}",
        )
    version = match.group("version")
    return ModelRef(match.group("name"), int(version) if version else None, match.group("alias"))


@dataclass
class _RawStep:
    step: Step
    when_text: str | None = None
    when_line: int = 0
    key_lines: dict[str, int] = field(default_factory=dict)


def _parse_step(name: str, node: Node, line: int, where: _Where) -> _RawStep:
    if not STEP_NAME.match(name) or name in KEYWORDS:
        raise where.error(
            line,
            f"step name {name!r} must start with a letter or '_' and hold only letters, "
            "digits and '_' (and not be one of: " + ", ".join(sorted(KEYWORDS)) + ")",
        )
    pairs = _pairs(node, where, f"step {name!r}")
    values = {
        key: (_value(v, where, f"{key} of step {name!r}", mapping=key == "params"), kline)
        for key, v, kline in pairs
    }
    step = Step(name=name, line=line)
    raw = _RawStep(step, key_lines={k: kline for k, (_, kline) in values.items()})
    if "model" in values and "op" in values:
        raise where.error(line, f"step {name!r} has both model: and op:; a step is one of them")
    if "model" in values:
        kind = "model"
        step.model = parse_model_ref(values["model"][0], where, values["model"][1])
    elif "op" in values:
        op, oline = values["op"]
        if op not in OPS:
            raise where.error(oline, f"unknown op {op!r} in step {name!r}; ops: {', '.join(OPS)}")
        kind = step.op = op
    else:
        raise where.error(line, f"step {name!r} needs model: NAME or op: ({', '.join(OPS)})")
    for key, (_, kline) in values.items():
        if key not in STEP_KEYS[kind]:
            allowed = ", ".join(sorted(STEP_KEYS[kind]))
            what = "a model step" if kind == "model" else f"op {kind}"
            raise where.error(kline, f"step {name!r}: {what} takes no {key!r} (it takes {allowed})")
    label = f"step {name!r}:"
    for key, (value, kline) in values.items():
        if key == "from":
            step.source = _name(value, where, kline, f"{label} from:")
        elif key == "input":
            step.input = _name(value, where, kline, f"{label} input:")
        elif key == "when":
            if not isinstance(value, str) or not value.strip():
                raise where.error(kline, f"{label} when: must be an expression in quotes")
            raw.when_text, raw.when_line = value, kline
        elif key in ("top_k", "k"):
            step.params[key] = _int(value, where, kline, f"{label} {key}", 1, 1000)
        elif key == "size":
            step.params["size"] = _int(value, where, kline, f"{label} size", 16, 1024)
        elif key in STEP_REFS:
            names = value if STEP_REFS[key] and isinstance(value, list) else [value]
            step.reads[key] = tuple(_name(n, where, kline, f"{label} {key}:") for n in names)
        elif key == "scale":
            step.params["scale"] = _float(value, where, kline, f"{label} scale", 1.0, 4.0)
        elif key == "margin":
            step.params["margin"] = _float(value, where, kline, f"{label} margin", 0.0, 1.0)
        elif key == "min_score":
            step.params["min_score"] = _float(value, where, kline, f"{label} min_score", 0, 1)
        elif key == "crops":
            if not isinstance(value, bool):
                raise where.error(kline, f"{label} crops must be true or false, not {value!r}")
            step.params["crops"] = value
        elif key == "params":
            if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
                raise where.error(kline, f"{label} params must be a mapping of names to values")
            step.params.update(value)
    if step.op is not None and step.source is None:
        raise where.error(line, f"{label} op {step.op} needs from: STEP")
    if step.op == "threshold" and "min_score" not in step.params:
        raise where.error(line, f"{label} op threshold needs min_score (0 to 1)")
    if step.op == "top_k" and "k" not in step.params:
        raise where.error(line, f"{label} op top_k needs k (how many to keep)")
    if step.op == "align":
        step.params.setdefault("size", 112)
    if step.op == "mesh_crop":
        step.params.setdefault("size", 192)
        step.params.setdefault("scale", 1.5)
    if step.op == "attention" and "faces" not in step.reads:
        raise where.error(line, f"{label} op attention needs faces: STEP (the faces its from: "
                          "step's crops were cut around)")
    if step.op == "who" and "vectors" not in step.reads:
        raise where.error(line, f"{label} op who needs vectors: STEP (embeddings of the faces)")
    return raw


MAX_NESTING = 32
"""How deep mappings and lists may nest in a graph file (a real graph needs four); PyYAML
composes recursively, so a file nested thousands deep would exhaust the stack."""


def _check_nesting(text: str, where: _Where) -> None:
    # The event stream is read without recursion, so the depth is known before composing.
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_NESTING:
                line = event.start_mark.line + 1 if event.start_mark is not None else 1
                raise where.error(line, f"nested more than {MAX_NESTING} deep; not a graph")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def parse_graph(
    text: str,
    origin: str = "graph",
    lookup: ModelLookup | None = None,
    *,
    check_models: bool = False,
    description: str | None = None,
) -> GraphSpec:
    """Parse and validate a graph. ``lookup`` tells about registered models; with
    ``check_models`` a model it does not know is an error (registration), otherwise the graph
    is accepted and fails at ask time if the model is still missing (built-in graphs)."""
    where = _Where(origin)
    try:
        _check_nesting(text, where)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise where.error(line, f"not valid YAML: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise BadInput(f"{origin}: not valid YAML: {exc}") from exc
    if root is None:
        raise BadInput(f"{origin}: the file is empty")
    top = {key: (node, line) for key, node, line in _pairs(root, where, "the graph")}
    for key, (_, line) in top.items():
        if key not in ("question", "description", "steps", "answer"):
            raise where.error(
                line, f"unknown key {key!r}; a graph has question, description, steps, answer"
            )
    if "question" not in top:
        raise where.error(1, "the graph needs question: NAME")
    qnode, qline = top["question"]
    name = _value(qnode, where, "question")
    if not isinstance(name, str) or not QUESTION_NAME.match(name):
        raise where.error(
            qline,
            f"question name {name!r} must be lower-case letters, digits, '.', '_' or '-'",
        )
    desc = description or ""
    if "description" in top:
        dnode, dline = top["description"]
        desc = _value(dnode, where, "description")
        if not isinstance(desc, str):
            raise where.error(dline, "description must be text")
    if "steps" not in top:
        raise where.error(qline, "the graph needs steps:")
    snode, sline = top["steps"]
    raw_steps = [_parse_step(k, v, line, where) for k, v, line in _pairs(snode, where, "steps")]
    if not raw_steps:
        raise where.error(sline, "steps: is empty; a graph needs at least one step")
    if len(raw_steps) > MAX_STEPS:
        raise where.error(sline, f"a graph has at most {MAX_STEPS} steps, not {len(raw_steps)}")
    raws = {r.step.name: r for r in raw_steps}
    _check_references(raws, where)
    _check_models(raws, where, lookup, check_models)
    _infer_kinds(raws, where, lookup)
    _parse_conditions(raws, where)
    order = _topological(raws, where)
    _check_kinds(raws, where)
    answer, single = _parse_answer(top.get("answer"), raws, where)
    _check_used(raws, answer, where)
    return GraphSpec(
        name=name,
        description=desc,
        steps={n: raws[n].step for n in order},
        answer=answer,
        single=single,
        origin=origin,
        text=text,
    )


def _check_references(raws: dict[str, _RawStep], where: _Where) -> None:
    for raw in raws.values():
        step = raw.step
        refs = [("from", step.source), ("input", step.input)]
        refs += [(key, name) for key, names in step.reads.items() for name in names]
        for key, target in refs:
            if target is None:
                continue
            line = raw.key_lines[key]
            if target == step.name:
                raise where.error(line, f"step {step.name!r} cannot read itself ({key}: {target})")
            if target not in raws:
                raise where.error(
                    line,
                    f"step {step.name!r} reads step {target!r} ({key}:), which the graph does "
                    f"not define (steps: {', '.join(raws)})",
                )


def _check_models(
    raws: dict[str, _RawStep], where: _Where, lookup: ModelLookup | None, check: bool
) -> None:
    for raw in raws.values():
        ref = raw.step.model
        if ref is None:
            continue
        line = raw.key_lines["model"]
        facts = lookup(ref.name) if lookup is not None else None
        if facts is None:
            if check:
                raise where.error(
                    line,
                    f"step {raw.step.name!r} uses model {ref.name!r}, which is not registered "
                    "(`argus models list` shows the models)",
                )
            continue
        if ref.version is not None and facts.versions and ref.version not in facts.versions:
            raise where.error(line, f"model {ref.name!r} has no version {ref.version}")
        if ref.alias is not None and facts.versions and ref.alias not in facts.aliases:
            raise where.error(line, f"model {ref.name!r} has no alias {ref.alias!r}")


def _infer_kinds(raws: dict[str, _RawStep], where: _Where, lookup: ModelLookup | None) -> None:
    visiting: list[str] = []

    def kind(name: str) -> None:
        raw = raws[name]
        step = raw.step
        if step.kind is not None or step.fields is not None:
            return
        if name in visiting:
            _raise_cycle([*visiting[visiting.index(name) :], name], raws, where)
        visiting.append(name)
        upstream = step.source or step.input
        if upstream is not None:
            kind(upstream)
        visiting.pop()
        if step.model is not None:
            facts = lookup(step.model.name) if lookup is not None else None
            task = TASKS.get(facts.task) if facts is not None else None
            task_kind = task.answer_kind if task is not None else None
            step.kind = "per_crop" if step.input is not None else task_kind
            step.fields = task.item_fields if task is not None else None
        elif step.op in CROP_OPS:
            step.kind, step.fields = "crops", CROP_FIELDS
        elif step.op == "attention":
            step.kind, step.fields = "attention", frozenset()
        elif step.source is not None:
            src = raws[step.source].step
            step.kind, step.fields = src.kind, src.fields

    for name in raws:
        kind(name)


def _parse_conditions(raws: dict[str, _RawStep], where: _Where) -> None:
    for raw in raws.values():
        if raw.when_text is None:
            continue
        step = raw.step

        def resolve(
            prefix: str | None, attr: str, column: int, me: str = step.name
        ) -> tuple[str, str]:
            return _resolve_name(raws, me, prefix, attr, column)

        try:
            step.when = parse_expression(raw.when_text, resolve)
        except ExprError as exc:
            raise where.error(
                raw.when_line,
                f"step {step.name!r}: when: {exc.message} (column {exc.column} of "
                f"{raw.when_text!r})",
            ) from exc
        needs = [step.source, step.input, *_reads(step), *sorted(step.when.steps())]
        step.needs = tuple(dict.fromkeys(n for n in needs if n is not None))
    for raw in raws.values():
        if raw.when_text is None:
            step = raw.step
            needs = [step.source, step.input, *_reads(step)]
            step.needs = tuple(dict.fromkeys(n for n in needs if n is not None))


def _reads(step: Step) -> list[str]:
    return [name for names in step.reads.values() for name in names]


def _resolve_name(
    raws: dict[str, _RawStep], me: str, prefix: str | None, attr: str, column: int
) -> tuple[str, str]:
    known = ", ".join(sorted(ATTRIBUTES))
    if prefix is None:
        if attr in raws:
            raise ExprError(
                f"{attr!r} is a step; name one of its attributes, e.g. {attr}.count", column
            )
        if attr not in ATTRIBUTES:
            raise ExprError(
                f"unknown name {attr!r}; write STEP.ATTRIBUTE with one of: {known}", column
            )
        wanted = ATTRIBUTES[attr][1]
        candidates = [
            n
            for n, r in raws.items()
            if n != me and wanted is not None and wanted in (r.step.fields or ())
        ]
        if len(candidates) != 1:
            which = (
                f"steps {', '.join(candidates)} all have it"
                if candidates
                else f"no step of this graph is known to have {wanted or attr}s"
            )
            raise ExprError(
                f"a bare {attr!r} needs one step to read, but {which}; write STEP.{attr}", column
            )
        return candidates[0], attr
    if prefix not in raws:
        raise ExprError(f"no step named {prefix!r} (steps: {', '.join(raws)})", column)
    if prefix == me:
        raise ExprError(f"a step's when: cannot read its own result ({prefix}.{attr})", column)
    if attr not in ATTRIBUTES:
        raise ExprError(f"unknown attribute {attr!r}; attributes: {known}", column)
    step = raws[prefix].step
    wanted = ATTRIBUTES[attr][1]
    if wanted is not None and step.fields is not None and wanted not in step.fields:
        raise ExprError(f"step {prefix!r} answers {step.kind}, which have no {wanted!r}", column)
    return prefix, attr


def _raise_cycle(cycle: list[str], raws: dict[str, _RawStep], where: _Where) -> None:
    first = raws[cycle[0]].step
    raise where.error(first.line, f"steps form a cycle (each needs the next): {' → '.join(cycle)}")


def _topological(raws: dict[str, _RawStep], where: _Where) -> list[str]:
    order: list[str] = []
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(name: str) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            _raise_cycle([*path[path.index(name) :], name], raws, where)
        state[name] = 1
        path.append(name)
        for dep in raws[name].step.needs:
            visit(dep)
        path.pop()
        state[name] = 2
        order.append(name)

    for name in raws:
        visit(name)
    return order


#: The item field each op reads; the answer kinds it takes are those of the tasks whose items
#: have it, so a new task's answers work with the ops that apply to them.
OP_NEEDS = {
    "align": "landmarks",
    "crop": "box",
    "threshold": "score",
    "top_k": "score",
    "mesh_crop": "landmarks",
    "who": "landmarks",
}


def kinds_with(field: str) -> tuple[str, ...]:
    """Answer kinds whose items have ``field``."""
    return tuple(dict.fromkeys(
        cls.answer_kind for cls in TASKS.values() if field in cls.item_fields
    ))


def _check_kinds(raws: dict[str, _RawStep], where: _Where) -> None:
    for raw in raws.values():
        step = raw.step
        if step.input is not None:
            src = raws[step.input].step
            if src.kind is not None and src.kind != "crops":
                raise where.error(
                    raw.key_lines["input"],
                    f"step {step.name!r}: input: needs crops (an align or crop step), but "
                    f"{src.name!r} answers {src.kind}",
                )
        if "vectors" in step.reads:
            vec = raws[step.reads["vectors"][0]].step
            if vec.kind is not None and vec.kind != "per_crop":
                raise where.error(
                    raw.key_lines["vectors"],
                    f"step {step.name!r}: vectors: needs a model step on crops (input:), but "
                    f"{vec.name!r} answers {vec.kind}",
                )
        if step.source is None:
            continue
        src = raws[step.source].step
        line = raw.key_lines["from"]
        if step.op == "attention":
            if src.kind is not None and src.kind != "per_crop":
                raise where.error(line, f"step {step.name!r}: op attention reads the face "
                                  f"attributes of crops, but {src.name!r} answers {src.kind}")
            # Each named step answers the items its key says (faces:, people:, objects:).
            for key, names in step.reads.items():
                for name in names:
                    kind = raws[name].step.kind
                    if kind is not None and kind != key:
                        raise where.error(raw.key_lines[key], f"step {step.name!r}: {key}: "
                                          f"needs a step answering {key}, but {name!r} "
                                          f"answers {kind}")
            continue
        needed = kinds_with(OP_NEEDS[step.op or ""])
        if src.kind is not None and src.kind not in needed:
            raise where.error(
                line,
                f"step {step.name!r}: op {step.op} reads {' or '.join(needed)}, but "
                f"{src.name!r} answers {src.kind}",
            )


def _parse_answer(
    entry: tuple[Node, int] | None, raws: dict[str, _RawStep], where: _Where
) -> tuple[tuple[str, ...], bool]:
    if entry is None:
        return tuple(raws), False
    node, line = entry
    value = _value(node, where, "answer")
    single = isinstance(value, str)
    names = [value] if single else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise where.error(line, "answer must be a step name or a list of step names")
    for name in names:
        if name not in raws:
            raise where.error(line, f"answer names step {name!r}, which the graph does not define")
    if len(set(names)) != len(names):
        raise where.error(line, "answer names a step twice")
    return tuple(names), single


def _check_used(raws: dict[str, _RawStep], answer: tuple[str, ...], where: _Where) -> None:
    used: set[str] = set()
    stack = list(answer)
    while stack:
        name = stack.pop()
        if name in used:
            continue
        used.add(name)
        stack.extend(raws[name].step.needs)
    for name, raw in raws.items():
        if name not in used:
            raise where.error(
                raw.step.line,
                f"step {name!r} is neither in answer: nor needed by a step that is; "
                "add it to answer: or remove it",
            )
