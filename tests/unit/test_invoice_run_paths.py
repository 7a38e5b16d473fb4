"""Every JSON path of the invoice workflow's definition against the models of the steps it
joins (billing/invoicing/steps.py). The definition is walked as Step Functions runs it,
with shapes instead of values: each state's input is what the one before gave it, each
task's Payload must be its step's input model and its result is its step's output model.
A path or a key that names a field no model has fails, so a field renamed in a model and
not in the ASL (or the reverse) fails here, not in a deployed run."""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

from pydantic import BaseModel

from billing.invoicing.due import ListDue
from billing.invoicing.issue import IssueInvoices
from billing.invoicing.report import ReportRun
from billing.invoicing.send import SendInvoices
from billing.invoicing.steps import BatchFile, BatchInput, DueInput, ManifestBatch, ReportOutput
from billing.invoicing.workflow import INVOICE_RUN_FUNCTIONS, definition_text
from billing.store.run_files import result_key

# Each task function's step, whose signature names its input and output models.
STEPS: dict[str, Callable[..., Any]] = {
    "list_due": ListDue.listed,
    "issue_invoices": IssueInvoices.issue,
    "send_invoices": SendInvoices.send,
    "report_run": ReportRun.run,
}
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
# The one task that is not a function: a batch's result written to the run's folder.
PUT_OBJECT = "arn:aws:states:::aws-sdk:s3:putObject"
ARRAY_LENGTH = "States.ArrayLength("
JSON_TO_STRING = "States.JsonToString("
FORMAT = "States.Format("


# --- shapes: what a value at some point of the run looks like --------------------------------


@dataclass(frozen=True)
class Obj:
    """An object: a model's fields, or one the definition builds (Parameters, ...)."""

    name: str
    fields: Mapping[str, Shape]
    required: frozenset[str] = frozenset()
    model: type[BaseModel] | None = None


@dataclass(frozen=True)
class ListOf:
    item: Shape


@dataclass(frozen=True)
class OneOf:
    options: tuple[Shape, ...]


@dataclass(frozen=True)
class Leaf:
    kind: Any


Shape = Obj | ListOf | OneOf | Leaf


class TaskFailure(BaseModel):
    """What a Catch puts at its ResultPath."""

    Error: str
    Cause: str


def of_model(model: type[BaseModel]) -> Obj:
    return Obj(
        name=model.__name__,
        fields={name: of_annotation(info.annotation) for name, info in model.model_fields.items()},
        required=frozenset(name for name, info in model.model_fields.items() if info.is_required()),
        model=model,
    )


def of_annotation(annotation: Any) -> Shape:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return of_annotation(typing.get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return of_model(annotation)
    if origin is list:
        return ListOf(of_annotation(typing.get_args(annotation)[0]))
    if origin in (Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(options) == 1:
            return of_annotation(options[0])
        return OneOf(tuple(of_annotation(option) for option in options))
    return Leaf(annotation)


def models_of(step: Callable[..., Any]) -> tuple[type[BaseModel], type[BaseModel]]:
    hints = typing.get_type_hints(step)
    returned = hints.pop("return")
    # the step's one model (Issue and Send also take the time their invocation has left)
    [taken] = [
        hint for hint in hints.values() if isinstance(hint, type) and issubclass(hint, BaseModel)
    ]
    return taken, returned


# --- the walk ---------------------------------------------------------------------------------


@dataclass
class Walk:
    problems: list[str] = field(default_factory=list)
    visited: set[str] = field(default_factory=set)

    def resolve(self, shape: Shape, path: str, where: str, context: Mapping[str, Shape]) -> Shape:
        if path.startswith((FORMAT, JSON_TO_STRING)) and path.endswith(")"):
            return self.text_of(shape, path, where, context)
        if path.startswith(ARRAY_LENGTH) and path.endswith(")"):
            inner = self.resolve(shape, path[len(ARRAY_LENGTH) : -1], where, context)
            if not isinstance(inner, ListOf):
                self.problems.append(f"{where}: {path}: not the length of a list")
            return Leaf(int)
        if path.startswith("$$."):
            known = [name for name in context if path == name or path.startswith(name + ".")]
            if not known:
                self.problems.append(f"{where}: {path}: no such context here")
                return Leaf(Any)
            rest = path[len(known[0]) :]  # the fields of the context's value, if any
            return self.resolve(context[known[0]], "$" + rest, where, context)
        if path != "$" and not path.startswith("$."):
            self.problems.append(f"{where}: {path}: not a path this test knows")
            return Leaf(Any)
        for name in path.split(".")[1:]:
            if not isinstance(shape, Obj):
                self.problems.append(f"{where}: {path}: {name!r} of something with no fields")
                return Leaf(Any)
            if name not in shape.fields:
                have = ", ".join(sorted(shape.fields))
                self.problems.append(f"{where}: {path}: {shape.name} has no {name!r} ({have})")
                return Leaf(Any)
            if shape.model is not None and name not in shape.required:
                info = shape.model.model_fields[name]
                if info.default is None:  # a None field is left out of the JSON
                    self.problems.append(
                        f"{where}: {path}: {shape.name}.{name} may be left out of the JSON, "
                        "and Step Functions fails a run on a missing path"
                    )
            shape = shape.fields[name]
        return shape

    def text_of(self, shape: Shape, call: str, where: str, context: Mapping[str, Shape]) -> Shape:
        """States.Format('template', $.a, ...) or States.JsonToString($.a): text, from
        paths that must resolve."""
        if call.startswith(FORMAT):
            _, *paths = call[len(FORMAT) : -1].split(", ")  # after the template, paths
        else:
            paths = [call[len(JSON_TO_STRING) : -1]]
        for path in paths:
            self.resolve(shape, path, where, context)
        return Leaf(str)

    def build(
        self, template: Mapping[str, Any], shape: Shape, where: str, context: Mapping[str, Shape]
    ) -> Obj:
        """The object a Parameters, ResultSelector or ItemSelector template makes."""
        fields: dict[str, Shape] = {}
        for key, value in template.items():
            if key.endswith(".$"):
                fields[key[:-2]] = self.resolve(shape, value, f"{where}.{key}", context)
            elif isinstance(value, dict):
                fields[key] = self.build(value, shape, f"{where}.{key}", context)
            else:
                fields[key] = Leaf(type(value))
        return Obj(name=where, fields=fields, required=frozenset(fields))

    def place(self, shape: Shape, value: Shape, path: str, where: str) -> Shape:
        """The state's input with its result put at ResultPath (discarded at null)."""
        if path is None:
            return shape
        if path == "$":
            return value
        name = path.removeprefix("$.")
        if not isinstance(shape, Obj) or "." in name:
            self.problems.append(f"{where}: ResultPath {path}: not a top-level field of an object")
            return shape
        return Obj(f"{shape.name}+{name}", {**shape.fields, name: value}, shape.required | {name})

    def conforms(self, source: Shape, target: Shape, where: str) -> bool:
        """Whether `source` is a value of `target`; the reasons it is not, as problems."""
        found = self._mismatches(source, target, where)
        self.problems.extend(found)
        return not found

    def _mismatches(self, source: Shape, target: Shape, where: str) -> list[str]:
        if isinstance(source, OneOf):
            return [p for option in source.options for p in self._mismatches(option, target, where)]
        if isinstance(target, OneOf):
            tried = [self._mismatches(source, option, where) for option in target.options]
            return min(tried, key=len)  # the option it comes closest to
        if isinstance(target, ListOf):
            if not isinstance(source, ListOf):
                return [f"{where}: a list is expected"]
            return self._mismatches(source.item, target.item, f"{where}[]")
        if isinstance(target, Obj):
            return self._object_mismatches(source, target, where)
        if isinstance(source, Obj | ListOf):
            return [f"{where}: a {target.kind} is expected, not an object or list"]
        same = source.kind is Any or source.kind == target.kind
        return [] if same else [f"{where}: {source.kind} given where {target.kind} is expected"]

    def _object_mismatches(self, source: Shape, target: Obj, where: str) -> list[str]:
        if not isinstance(source, Obj):
            return [f"{where}: a {target.name} is expected"]
        if source.model is not None and source.model is target.model:
            return []
        found = [
            f"{where}: {name!r} is not a field of {target.name}"
            for name in source.fields
            if name not in target.fields
        ]
        found += [
            f"{where}: {target.name}'s {name!r} is not given"
            for name in sorted(target.required - set(source.fields))
        ]
        for name, value in source.fields.items():
            if name in target.fields:
                found += self._mismatches(value, target.fields[name], f"{where}.{name}")
        return found

    def states(
        self, states: Mapping[str, Any], start: str, shape: Shape, context: Mapping[str, Shape]
    ) -> list[Shape]:
        """The outputs of the states' ends, walking from `start` with `shape` as its input."""
        ends: list[Shape] = []
        pending = [(start, shape)]
        while pending:
            name, given = pending.pop(0)
            self.visited.add(name)
            state = states[name]
            kind = state["Type"]
            if kind == "Task":
                output, caught = self.task(name, state, given)
                pending += [
                    (c["Next"], self.place(given, caught, c["ResultPath"], name))
                    for c in state.get("Catch", [])
                ]
            elif kind == "Map":
                output = self.map(name, state, given)
            elif kind == "Pass":
                output = self.build(
                    state.get("Parameters", {}), given, f"{name}.Parameters", context
                )
            else:
                self.problems.append(f"{name}: a {kind} state is not walked by this test")
                continue
            if state.get("End"):
                ends.append(output)
            else:
                pending.append((state["Next"], output))
        return ends

    def task(self, name: str, state: Mapping[str, Any], given: Shape) -> tuple[Shape, Shape]:
        if state["Resource"] == PUT_OBJECT:
            return self.put_object(name, state, given), of_model(TaskFailure)
        assert state["Resource"] == LAMBDA_INVOKE, name
        parameters = state["Parameters"]
        function = INVOICE_RUN_FUNCTIONS[parameters["FunctionName"].strip("${}")]
        taken, returned = models_of(STEPS[function])
        where = f"{name}.Parameters.Payload"
        if "Payload.$" in parameters:
            payload = self.resolve(given, parameters["Payload.$"], where, {})
        else:
            payload = self.build(parameters["Payload"], given, where, {})
        self.conforms(payload, of_model(taken), f"{where} ({function}: {taken.__name__})")
        result: Shape = Obj(f"{name}'s result", {"Payload": of_model(returned)})
        if "ResultSelector" in state:
            result = self.build(state["ResultSelector"], result, f"{name}.ResultSelector", {})
        output = self.place(given, result, state.get("ResultPath", "$"), name)
        if "OutputPath" in state:
            output = self.resolve(output, state["OutputPath"], f"{name}.OutputPath", {})
        return output, of_model(TaskFailure)

    def put_object(self, name: str, state: Mapping[str, Any], given: Shape) -> Shape:
        """RecordBatch: its input must be a BatchFile (a batch's result and where it goes)."""
        self.conforms(given, of_model(BatchFile), f"{name} (input: BatchFile)")
        parameters = self.build(state["Parameters"], given, f"{name}.Parameters", {})
        assert set(parameters.fields) == {"Bucket", "Key", "Body", "ContentType"}, name
        output = self.place(given, Leaf(Any), state["ResultPath"], name)
        return self.resolve(output, state["OutputPath"], f"{name}.OutputPath", {})

    def map(self, name: str, state: Mapping[str, Any], given: Shape) -> Shape:
        """A Distributed Map over the manifest: each element a ManifestBatch, each child's
        input (ItemSelector) a BatchInput; its results go to S3, not into the state."""
        reader = self.build(state["ItemReader"]["Parameters"], given, f"{name}.ItemReader", {})
        assert set(reader.fields) == {"Bucket", "Key"}, name
        self.resolve(given, state["MaxConcurrencyPath"], f"{name}.MaxConcurrencyPath", {})
        context = {
            "$$.Map.Item.Value": of_model(ManifestBatch),
            "$$.Map.Item.Index": Leaf(int),
        }
        iteration = self.build(state["ItemSelector"], given, f"{name}.ItemSelector", context)
        self.conforms(iteration, of_model(BatchInput), f"{name}.ItemSelector (BatchInput)")
        processor = state["ItemProcessor"]
        self.states(processor["States"], processor["StartAt"], of_model(BatchInput), context)
        return self.place(given, Leaf(Any), state["ResultPath"], name)


def walk_definition() -> tuple[Walk, list[Shape]]:
    definition = json.loads(definition_text())
    walk = Walk()
    ends = walk.states(definition["States"], definition["StartAt"], of_model(DueInput), {})
    return walk, ends


def all_states(states: Mapping[str, Any]) -> set[str]:
    names = set(states)
    for state in states.values():
        if "ItemProcessor" in state:
            names |= all_states(state["ItemProcessor"]["States"])
    return names


def test_every_path_of_the_definition_names_a_field_of_the_models_it_reads_and_writes() -> None:
    # GIVEN the definition, walked from the run's input (DueInput) as Step Functions runs it
    walk, ends = walk_definition()

    # THEN every path resolves, every Payload is its step's input model and every state is
    # reached, and the run ends with the Report step's output (what `billing run` reads)
    assert walk.problems == []
    assert walk.visited == all_states(json.loads(definition_text())["States"])
    assert [walk.conforms(end, of_model(ReportOutput), "output") for end in ends] == [True]


def test_each_batch_writes_its_result_where_the_report_reads_it() -> None:
    # GIVEN the key the batches' terminal states give RecordBatch
    processor = json.loads(definition_text())["States"]["Batches"]["ItemProcessor"]
    keys = {
        state["Parameters"]["key.$"]
        for state in processor["States"].values()
        if state["Type"] == "Pass"
    }

    # THEN it is the one billing.store.run_files reads, for the folder's prefix and index
    [key] = keys
    assert key == "States.Format('{}results/{}.json', $.folder.prefix, $.index)"
    template = key.split("'")[1]
    assert result_key("runs/r1/", 7) == template.replace("{}", "runs/r1/", 1).replace("{}", "7", 1)


def test_a_field_the_definition_names_and_no_model_has_is_found() -> None:
    # GIVEN the Send task reading `left` from Issue's result, which IssueOutput has no field for
    definition = json.loads(definition_text())
    batches = definition["States"]["Batches"]
    issue = batches["ItemProcessor"]["States"]["Issue"]
    issue["ResultSelector"]["left.$"] = "$.Payload.left"
    send = batches["ItemProcessor"]["States"]["Send"]
    send["Parameters"]["Payload"]["unsent.$"] = "$.issue.unsent"
    walk = Walk()

    # WHEN it is walked
    walk.states(definition["States"], definition["StartAt"], of_model(DueInput), {})

    # THEN both are named: the path into the step's output, the key of the step's input
    assert (
        "Issue.ResultSelector.left.$: $.Payload.left: IssueOutput has no 'left'"
        in (walk.problems[0])
    )
    assert any("'unsent' is not a field of SendInput" in p for p in walk.problems), walk.problems
