"""The district's view: what businesses ask, where the assistant fails, how cases and 好差评 go.

Turns are derived from the events Rasa's SQL tracker store already holds (no action writes
twice): insight/tracker.py reads them past a cursor, insight/turns.py turns each user message
into one record (kind, outcome, topic, unit, department, model), insight/privacy.py masks what
could identify a person, insight/store.py keeps the turns in the cases' database and
insight/sync.py brings them up to date. insight/tables.py computes the report tables from the
turns, the cases and the ratings (insight/sources.py); `scripts/insight.py` (`make insight`)
prints them as CSV, and the console's dashboard (console/insight_views.py) calls the same
functions. insight/review.py adds the answers rated 差评 to the review inbox, with each
question's reasons; the labels staff give are audited in `insight_labels`.

    from insight import Filters, InsightStore, Sources, review, tables
    from insight.sync import sync
    from insight.tracker import tracker_url

    store = InsightStore()                                             # $DATABASE_URL
    sync(tracker_url(), store)                                         # new events → turns
    rows = tables.daily(Sources.of(), Filters(department="scjg"))      # [DailyRow(date=…, …)]
    inbox = store.review(department="scjg")                            # unsure questions, masked
    items = review.inbox(store, department="scjg")                     # … and 差评, with reasons
"""

from insight.sources import Filters, Sources
from insight.store import InsightStore

__all__ = ["Filters", "InsightStore", "Sources"]
