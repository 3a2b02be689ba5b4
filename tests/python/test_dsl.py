"""elasticsearch-dsl against a real CameoDB server: a Document with custom analyzers,
``init()`` run twice (as applications do on every start), and an alias swap through
``Index`` after copying the documents to a new index with the reindex helper."""

from __future__ import annotations

import pytest
from elasticsearch import helpers
from elasticsearch_dsl import Document, Index, InnerDoc, Integer, Keyword, Nested, Q, Text, analyzer, tokenizer

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


class Comment(InnerDoc):
    author = Keyword()
    stars = Integer()


class Post(Document):
    title = Text()
    comments = Nested(Comment)

    class Index:
        name = "dsl-posts"
        settings = {"number_of_replicas": 0}


def test_nested_documents_queries_inner_hits_and_aggregations(es):
    Post.init(using=es)
    try:
        Post(meta={"id": "1"}, title="one", comments=[Comment(author="ann", stars=5), Comment(author="bob", stars=1)]).save(using=es)
        Post(meta={"id": "2"}, title="two", comments=[Comment(author="bob", stars=4)]).save(using=es, refresh=True)
        assert es.indices.get_mapping(index="dsl-posts")["dsl-posts"]["mappings"]["properties"]["comments"]["type"] == "nested"
        inner = Q("bool", must=[Q("term", comments__author="bob"), Q("range", comments__stars={"gte": 4})])
        search = Post.search(using=es).query("nested", path="comments", query=inner, inner_hits={})
        found = search.execute()
        assert [hit.meta.id for hit in found] == ["2"]
        element = found[0].meta.inner_hits.comments[0]
        assert (element.author, element.stars) == ("bob", 4)
        assert element.meta.nested.offset == 0
        # The posts come back as Documents with their elements as InnerDocs.
        assert isinstance(found[0].comments[0], Comment)
        search = Post.search(using=es).extra(size=0)
        search.aggs.bucket("comments", "nested", path="comments").bucket("authors", "terms", field="comments.author")
        result = search.execute()
        assert result.aggregations.comments.doc_count == 3
        assert [(b.key, b.doc_count) for b in result.aggregations.comments.authors.buckets] == [("bob", 2), ("ann", 1)]
    finally:
        es.indices.delete(index="dsl-posts", ignore_unavailable=True)
