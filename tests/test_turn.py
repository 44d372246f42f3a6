"""turn.py alone: one exchange against the fake, into a recording sink. A complete answer is
committed to its conversation and a failed one is not; an error of the server or of a sink
is the answer's one line, never raised; with tools the loop runs the calls in order."""
from types import SimpleNamespace

from cfai_magic import turn
from cfai_magic.errors import Unexpected
from cfai_magic.models import Model
from cfai_magic.parsing import parse_cell
from cfai_magic.state import Conversation
from cfai_magic.testing import Reply
from cfai_magic.tools import Toolbox, as_tools

GLM = Model("@cf/zai-org/glm-4.7-flash", tools=True)


class Recorder:
    """A Sink that keeps what it was shown."""

    def __init__(self, fail_on_feed: bool = False):
        self.calls, self.fail_on_feed = [], fail_on_feed

    def start(self, answer): self.calls.append("start")
    def waiting(self, text): self.calls.append(("waiting", text))

    def feed(self, event):
        if self.fail_on_feed:
            raise RuntimeError("a bug in a sink")
        self.calls.append(type(event).__name__)

    def step(self, step): self.calls.append(("step", step.name, step.result))
    def confirm(self, name, arguments): return True
    def finish(self, answer, metadata): self.calls.append(("finish", metadata["status"]))


def session(client, conversation=None):
    alone = turn._Alone(client)
    alone.store = SimpleNamespace(get=lambda name=None: conversation)
    return alone


def prepared(client, text, conversation, **ask):
    ask = turn.Ask(GLM, parse_cell(text), {}, once=conversation is None, **ask)
    return turn.prepare(session(client, conversation), ask)


def test_a_complete_answer_is_shown_and_committed(fake_workers_ai):
    client, chat = fake_workers_ai.client(), Conversation("default")
    fake_workers_ai.enqueue("Hello there")
    sink = Recorder()
    answer = turn.execute(session(client, chat), prepared(client, "Hi", chat), sink)
    assert answer.status == "done" and answer.text == "Hello there" and answer.error is None
    assert sink.calls[0] == "start" and sink.calls[-1] == ("finish", "done")
    assert "Text" in sink.calls
    assert [t.answer for t in chat.turns] == ["Hello there"]


def test_a_server_error_is_the_answers_line_and_nothing_is_committed(fake_workers_ai):
    client, chat = fake_workers_ai.client(max_retries=0), Conversation("default")
    fake_workers_ai.enqueue(status=400, code=5006, message="bad input")
    answer = turn.execute(session(client, chat), prepared(client, "Hi", chat), Recorder())
    assert answer.status == "error" and "bad input" in str(answer.error)
    assert chat.turns == []


def test_a_bug_in_a_sink_is_one_unexpected_line(fake_workers_ai):
    client, chat = fake_workers_ai.client(), Conversation("default")
    fake_workers_ai.enqueue("Hello there")
    answer = turn.execute(session(client, chat), prepared(client, "Hi", chat),
                          Recorder(fail_on_feed=True))
    assert isinstance(answer.error, Unexpected)
    assert str(answer.error).startswith("Unexpected RuntimeError: a bug in a sink")
    assert chat.turns == []


def test_the_tool_loop_runs_the_calls_and_sends_their_results(fake_workers_ai):
    seen = []

    def weather(city: str) -> str:
        """The weather."""
        seen.append(city)
        return f"sunny in {city}"
    client = fake_workers_ai.client()
    fake_workers_ai.enqueue(Reply(tool_calls=[{"name": "weather", "arguments": {"city": "Oslo"}}]),
                            "It is sunny in Oslo.")
    sink = Recorder()
    answer = turn.execute(session(client), prepared(client, "Weather?", None,
                                                    tools=Toolbox(as_tools([weather]))), sink)
    assert answer.text == "It is sunny in Oslo." and seen == ["Oslo"]
    assert ("step", "weather", "sunny in Oslo") in sink.calls
    sent = fake_workers_ai.last.body["messages"]
    assert sent[-1]["role"] == "tool" and sent[-1]["content"] == "sunny in Oslo"
