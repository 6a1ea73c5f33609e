"""A runnable of the example extension."""

import os

from flambe.runnable import Runnable


class WriteReport(Runnable):
    """Writes a greeting (and optionally a secret's presence) to a file."""

    def __init__(self, path: str, greeter, secret_section: str = "") -> None:
        self.path = path
        self.greeter = greeter
        self.secret_section = secret_section

    def run(self, force: bool = False, debug: bool = False, **kwargs) -> None:
        if os.path.exists(self.path) and not force:
            raise FileExistsError(f"{self.path} exists; use --force")
        greeter = self.greeter()  # a Schema: built when the runnable decides
        lines = [greeter.greeting]
        if self.secret_section:
            token = self.config[self.secret_section]["TOKEN"]
            lines.append(f"secret length: {len(token)}")
        with open(self.path, "w") as handle:
            handle.write("\n".join(lines) + "\n")
