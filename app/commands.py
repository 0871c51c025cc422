"""Edits the editor makes that are several project commands in one undo step (Qt-free).

`Batch` builds its parts one after another against the state the previous ones left (as the
project model asks: build a command against the current state, then do it), the first time it
is done; redo replays them, undo reverts them in reverse. It would sit naturally in
core/project/commands.py; it lives here until that module's owners take it.
"""
from __future__ import annotations

from typing import Callable, Iterable

from core.project import Command


class Batch(Command):
    """One undo step made of commands built by `factories` (callables returning a Command).
    A later Batch with the same `merge_key` joins this step while it is the latest one (History
    merges into the top step only, and never into a saved one)."""

    def __init__(self, project, factories: Iterable[Callable[[], Command]], text: str, merge_key=None):
        super().__init__(project)
        self.text = text
        self.merge_key = merge_key
        self._factories = list(factories)
        self._parts: list[Command] = []

    def do(self):
        if self._factories is None:  # redo
            for part in self._parts:
                part.do()
            return
        try:
            for make in self._factories:
                part = make()
                part.do()
                if not part.obsolete:
                    self._parts.append(part)
        except BaseException:
            for part in reversed(self._parts):  # all or nothing
                part.undo()
            self._parts = []
            raise
        self._factories = None

    def undo(self):
        for part in reversed(self._parts):
            part.undo()

    def merge(self, other: Command) -> bool:
        if type(other) is not Batch or self.merge_key is None or other.merge_key != self.merge_key:
            return False
        self._parts.extend(other._parts)  # done already: History does a command before merging it
        return True

    @property
    def obsolete(self) -> bool:
        return self._factories is None and not self._parts

    def referenced_takes(self):
        return [t for part in self._parts for t in part.referenced_takes()]
