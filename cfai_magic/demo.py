"""A short scripted demo in the terminal: a streamed answer, a chat that continues, an error.

Runs against FakeWorkersAI, so it needs no account and no network.
"""
import sys
import time

from .errors import CfaiError
from .testing import FakeWorkersAI, Reply


def main() -> int:
    with FakeWorkersAI() as fake:
        client = fake.client()
        fake.enqueue(Reply(text="Hello, World first appeared in Brian Kernighan's 1972 "
                                "tutorial for the B language, then in The C Programming "
                                "Language (1978).", drip=0.04))
        print("> What is the origin of the phrase Hello, World?\n")
        start = time.monotonic()
        stream = client.stream("llama2", messages=[
            {"role": "user", "content": "What is the origin of the phrase Hello, World?"}])
        for piece in stream:
            print(piece, end="", flush=True)
        print(f"\n\n[{len(stream.text.split())} words in {time.monotonic() - start:.1f} s, "
              f"usage {stream.usage}]\n")
        fake.enqueue(status=401, code=10000, message="Authentication error")
        try:
            client.run("llama2", prompt="hi")
        except CfaiError as err:
            print(f"An error is one line: {type(err).__name__}: {err}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
