"""CoNaLa snippets mapped to the default corpus's documents: each rule of dualsearch.corpora.stdlib_questions."""

import pytest

from dualsearch.corpora.stdlib_questions import question_pairs, snippet_documents

IDS = {
    "module:os",
    "module:re",
    "function:os.path.basename",
    "function:os.path.join",
    "data:sys.argv",
    "class:collections.Counter",
    "method:datetime.datetime.strptime",
    "method:datetime.datetime.strftime",
    "function:sorted",
    "class:list",
    "class:dict",
    "function:print",
    "function:open",
    "method:str.join",
    "method:str.split",
    "method:str.strip",
    "method:list.append",
    "method:dict.update",
    "method:bytes.decode",
    "method:io.IOBase.readlines",
    "method:re.Pattern.findall",
    "method:re.Match.group",
    "function:re.compile",
    "function:re.match",
}


@pytest.mark.parametrize(
    ("snippet", "question", "expected"),
    [
        # rule 1: modules and what they hold, called or not, aliases followed
        ("os.path.basename(p)", "", ["function:os.path.basename"]),
        ("print(sys.argv[1])", "", ["data:sys.argv"]),
        ("import collections as c\nc.Counter(words)", "", ["class:collections.Counter"]),
        ("from os.path import join as j\nj(a, b)", "", ["function:os.path.join"]),
        ("datetime.strptime(s, '%Y')", "", ["method:datetime.datetime.strptime"]),
        ("re.escape(s)", "", ["module:re"]),  # nothing more precise of re is a document here
        ("re.compile('a')", "", ["function:re.compile"]),  # the module is not kept beside its function
        # rule 2: builtins; print dropped beside anything else, kept alone
        ("sorted(x, reverse=True)", "", ["function:sorted"]),
        ("print(sorted(x))", "", ["function:sorted"]),
        ("print('hello')", "", ["function:print"]),
        # rule 3: methods on literals
        ("''.join(x)", "", ["method:str.join"]),
        ("[].append(1)", "", ["method:list.append"]),
        ("b'abc'.decode('utf8')", "", ["method:bytes.decode"]),
        # rule 4: variables typed by the snippet or by the question, methods along the MRO
        ("s = 'a b'\ns.split()", "", ["method:str.split"]),
        ("with open(p) as f:\n    lines = f.readlines()", "", ["function:open", "method:io.IOBase.readlines"]),
        ("pattern = re.compile('a')\npattern.findall(s)", "", ["function:re.compile", "method:re.Pattern.findall"]),
        ("m = re.match('a', s)\nm.group(0)", "", ["function:re.match", "method:re.Match.group"]),
        ("a.update(b)", "update dictionary `a` with the key/value pairs of `b`", ["method:dict.update"]),
        ("words.append(w)", "add `w` to list of strings `words`", ["method:list.append"]),
        ("a.update(b)", "update `a` with `b`", []),  # the type of `a` is nowhere: nothing
        ("str.strip(line)", "", ["method:str.strip"]),
        # rule 5: 2to3's list() wrappers are not answers
        ("list(d.items())", "", []),
        ("list(map(str, x))", "", []),
        ("list(x)", "", ["class:list"]),
        # third-party code and unparsable snippets map to nothing
        ("df.sort('m')", "", []),
        ("np.array(x)", "", []),
        ("for x in", "", []),
    ],
)
def test_snippet_documents(snippet, question, expected):
    assert snippet_documents(snippet, question, IDS) == expected


def test_a_document_outside_the_corpus_is_not_invented():
    assert snippet_documents("os.path.join(a, b)", "", {"module:os"}) == ["module:os"]
    assert snippet_documents("os.path.join(a, b)", "", set()) == []


def test_question_pairs_group_records_by_question_and_drop_questions_that_map_to_nothing():
    records = [
        {"question_id": 1, "intent": "join words", "rewritten_intent": "join list `w`", "snippet": "' '.join(w)"},
        {"question_id": 1, "intent": "join words", "rewritten_intent": None, "snippet": "sorted(w)"},
        {"question_id": 2, "intent": "pandas sort", "rewritten_intent": None, "snippet": "df.sort('a')"},
    ]
    pairs = question_pairs(records, IDS)
    assert [(p.question_id, p.queries, p.documents) for p in pairs] == [
        (1, ("join words", "join list `w`"), ("method:str.join", "function:sorted"))
    ]
