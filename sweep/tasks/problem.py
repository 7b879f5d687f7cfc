"""One evaluation item: a prompt, the text the model must produce, and how its answer is read."""

from __future__ import annotations

from dataclasses import dataclass

# Every target ends with this; greedy decoding stops on it. It is part of the scored target tokens.
TERMINATOR = "\n"
# In a chain-of-thought target, the final answer follows the last occurrence of this marker.
ANSWER_MARKER = "#"


@dataclass(frozen=True)
class Problem:
    prompt: str
    target: str  # the full expected output, without TERMINATOR (a scratchpad, then the answer, for CoT)
    choices: tuple[str, ...] = ()  # multiple choice: the option labels, one of which is the target
    chain_of_thought: bool = False  # the target is a scratchpad ending in ANSWER_MARKER + answer
    split_key: str = ""  # what the train/held-out split hashes (default: the prompt); lets two
    #                      formats of one problem (direct and chain-of-thought) fall on the same side

    @property
    def key(self) -> str:
        return self.split_key or self.prompt

    @property
    def answer(self) -> str:
        """The final answer exact match is judged on."""
        return self.answer_in(self.target)

    def answer_in(self, output: str) -> str:
        """The answer a model's output gives: all of it, or what follows the last CoT marker."""
        return final_answer(output) if self.chain_of_thought else output

    def document(self) -> str:
        """The problem as it appears in training text."""
        return self.prompt + self.target + TERMINATOR


def final_answer(text: str) -> str:
    """The answer part of a (possibly chain-of-thought) output: after the last ANSWER_MARKER."""
    return text.rsplit(ANSWER_MARKER, 1)[-1] if ANSWER_MARKER in text else text
