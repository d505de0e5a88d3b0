"""Results: how return values are serialized, signed, stored and loaded back."""

from sluice.results.serializers import JSONSerializer, PickleSerializer, Serializer
from sluice.results.store import ResultRef, ResultStore

__all__ = ["JSONSerializer", "PickleSerializer", "ResultRef", "ResultStore", "Serializer"]
