"""Every limit in one place, named with its unit last."""

# Source rows committed in one transaction by `load` (`--batch-rows` chooses another size).
# Each commit writes every page the batch touched, and a big book's indexes are touched all
# over: on a million trades (SQLite), 5,000 rows a batch took 104 s, 10,000 88 s, 25,000 77 s;
# on 100,000 trades 10,000 was the fastest (the second process preparing rows waits less for
# the first batch). So a file of LARGE_FILE_BYTES or more goes in larger batches — unless the
# load defers the secondary indexes (store/bulk_indexes.py): a batch then touches few pages, and
# on the million trades 10,000–15,000 rows took 48–50 s against 53–55 s for 25,000, on SQLite
# (PostgreSQL: 12,500 rows 64 s, 25,000 69 s), the two processes keeping closer in step.
ROWS_PER_BATCH = 10_000
ROWS_PER_LARGE_BATCH = 25_000
LARGE_FILE_BYTES = 32 * 2**20  # about 400,000 trades.csv rows
# A trades file of this many rows or more, and at least as many as the book holds, is loaded
# with the secondary indexes built once at the end (store/bulk_indexes.py says why)
DEFER_INDEXES_MIN_ROWS = 100_000
ESTIMATE_SAMPLE_BYTES = 65_536  # read from a file's start to estimate its rows
BATCH_ROWS_MIN = 1
BATCH_ROWS_MAX = 100_000
# trades.csv and cash.csv from this size on are read and prepared by a second process while
# `load` writes
PREPARE_IN_WORKER_BYTES = 1_048_576
POSTINGS_PER_ENTRY_MAX = 64  # a business event larger than this is a programmer error
FILE_ROWS_MAX = 20_000_000  # rows in one book-folder file
FIELD_CHARS_MAX = 256  # characters in one CSV field
SERIALIZABLE_RETRIES_MAX = 5  # PostgreSQL serialization failures retried per transaction
QUANTITY_SCALE_MAX = 8  # decimals an instrument's quantity may declare
FRACTION_PLACES = 12  # decimals a non-terminating cash-in-lieu fraction is written to (half-up)
FIX_MESSAGE_BYTES_MAX = 65_536
SQLITE_CACHE_KIB = 131_072  # SQLite page cache per connection
# A balance as of a date starts from the latest checkpoint up to this many days before it and
# adds the postings since through the date index; further back, one scan of the journal is
# quicker.
CHECKPOINT_REACH_DAYS = 31
# A load that books this many rows or more has the planner's statistics of what it grew
# refreshed at its end (PostgreSQL ANALYZE: about 5 s on the million-trade book)
ANALYZE_AFTER_ROWS = 10_000
