"""`posebridge check-config`: read workflow config files as Snakemake will, naming the file on error."""

from __future__ import annotations

HELP = "check that workflow config files (--configfile) parse, naming the file and line of an error"
DESCRIPTION = """\
Read each FILE as Snakemake reads a --configfile (JSON, else YAML) and check that it holds a
mapping of keys at the top level. Snakemake parses config files before the workflow, and its own
message for a syntax error names neither the file nor the line; `make run CONFIG=FILE` runs this
check first. The keys and values are checked by the workflow itself (workflow/schemas/), with an
error naming the key.
"""


def add_arguments(parser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="config file (YAML or JSON)")


def read_config_file(path) -> dict:
    """The mapping in config file ``path``; a DataError naming the file (and the line and column of a
    syntax error) when it is missing, unreadable, not YAML/JSON or not a mapping."""
    import yaml

    from posebridge.errors import DataError

    try:
        text = open(path, encoding="utf-8").read()
    except FileNotFoundError:
        raise DataError(path, "no such config file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(path, f"cannot read the config file ({err.__class__.__name__})") from None
    try:
        values = yaml.safe_load(text)  # YAML 1.1 reads JSON too
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "syntax error"
        raise DataError(path, f"not valid YAML: {problem}{where}") from None
    if not isinstance(values, dict):
        raise DataError(path, "a config file must hold keys at the top level (a YAML mapping)")
    return values


def main(args) -> int:
    for path in args.files:
        values = read_config_file(path)
        print(f"{path}: {len(values)} top-level keys ({', '.join(map(str, values))})")
    return 0
