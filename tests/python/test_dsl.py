"""elasticsearch-dsl against a real CameoDB server: a Document with custom analyzers,
``init()`` run twice (as applications do on every start), and an alias swap through
``Index`` after copying the documents to a new index with the reindex helper."""

from __future__ import annotations

import pytest
from elasticsearch import helpers
from elasticsearch_dsl import Document, Index, Integer, Keyword, Text, analyzer, tokenizer

folded = analyzer("folded", tokenizer="standard", filter=["lowercase", "asciifolding"])
autocomplete = analyzer(
    "autocomplete",
    tokenizer=tokenizer("edges", "edge_ngram", min_gram=2, max_gram=6, token_chars=["letter"]),
    filter=["lowercase"],
)


class Book(Document):
    title = Text(analyzer=folded, fields={"raw": Keyword()})
    name = Text(analyzer=autocomplete, search_analyzer="standard")
    year = Integer()

    class Index:
        name = "dsl-books-v1"
        aliases = {"dsl-books": {}}
        settings = {"number_of_replicas": 0}


@pytest.fixture(scope="module")
def books(es):
    Book.init(using=es)
    for n, (title, name) in enumerate([("Crème Brûlée", "Thinkpad"), ("Dune", "Pixel"), ("Emma", "Kindle")]):
        Book(meta={"id": str(n)}, title=title, name=name, year=1900 + n).save(using=es, refresh=True)
    yield es
    es.indices.delete(index="dsl-books-v1,dsl-books-v2", ignore_unavailable=True)


def test_init_twice_keeps_the_index(books):
    # The second init finds the index, compares its analysis, and puts the same mapping.
    Book.init(using=books)
    assert books.count(index="dsl-books")["count"] == 3
    settings = books.indices.get_settings(index="dsl-books-v1")["dsl-books-v1"]["settings"]["index"]
    assert settings["analysis"]["analyzer"]["folded"]["filter"] == ["lowercase", "asciifolding"]


def test_custom_analyzers_are_used(books):
    found = Book.search(using=books, index="dsl-books").query("match", title="creme").execute()
    assert [hit.meta.id for hit in found] == ["0"]
    found = Book.search(using=books, index="dsl-books").query("match", name="thin").execute()
    assert [hit.title for hit in found] == ["Crème Brûlée"]
    tokens = books.indices.analyze(index="dsl-books-v1", analyzer="autocomplete", text="Kindle")
    assert [t["token"] for t in tokens["tokens"]] == ["ki", "kin", "kind", "kindl", "kindle"]


def test_alias_swap_through_index(books):
    v2 = Index("dsl-books-v2", using=books)
    v2.settings(number_of_replicas=0)
    v2.document(Book)
    v2.create()
    helpers.reindex(books, "dsl-books-v1", "dsl-books-v2")
    books.indices.refresh(index="dsl-books-v2")
    v2.put_alias(name="dsl-books")
    Index("dsl-books-v1", using=books).delete_alias(name="dsl-books")
    assert list(books.indices.get_alias(name="dsl-books")) == ["dsl-books-v2"]
    assert v2.exists_alias(name="dsl-books")
    assert not Index("dsl-books-v1", using=books).exists_alias(name="dsl-books")
    found = Book.search(using=books, index="dsl-books").query("match", title="dune").execute()
    assert [hit.meta.index for hit in found] == ["dsl-books-v2"]
    assert books.count(index="dsl-books")["count"] == 3
