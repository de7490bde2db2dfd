"""Loads LDIF into a stopped Samba AD DC's sam.ldb through Samba's own Python bindings.

Usage: /usr/bin/python3 samba_load.py SMB_CONF LDIF_FILE

Run by tests/support/lab/samba.rs (Forest::bulk_load), one process per load: the bindings
keep the schema of the first database a process opens, so loading two forests from one
process would give objects the other forest's objectCategory.

Records without a changetype, and `changetype: add`, are added; `changetype: modify` records
are applied as modifications. Everything goes in one transaction: a failure leaves the
database as it was, and the error names the record.

`batch_mode` tells ldb not to wrap each operation in a nested sub-transaction. Those
sub-transactions copy every index list an add touches (objectClass=top lists every object),
which makes each add cost time proportional to the database's size; without them 5,000
users load in about 7 s instead of about 55 s. The price - an operation that fails halfway
can leave the transaction inconsistent - does not matter here: on any error the whole
transaction is cancelled.
"""

import sys
import time

import ldb
from samba.auth import system_session
from samba.param import LoadParm
from samba.samdb import SamDB


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    conf, ldif_path = sys.argv[1], sys.argv[2]
    lp = LoadParm()
    lp.load(conf)
    started = time.monotonic()
    db = SamDB(
        url=lp.samdb_url(),
        session_info=system_session(),
        lp=lp,
        options=["batch_mode:1"],
    )
    with open(ldif_path, encoding="utf-8") as f:
        text = f.read()
    done = 0
    dn = "(before the first record)"
    db.transaction_start()
    try:
        for changetype, msg in db.parse_ldif(text):
            dn = msg.dn
            if changetype in (ldb.CHANGETYPE_NONE, ldb.CHANGETYPE_ADD):
                db.add(msg)
            elif changetype == ldb.CHANGETYPE_MODIFY:
                db.modify(msg)
            else:
                raise ValueError("only add and modify records are supported")
            done += 1
    except Exception as e:
        db.transaction_cancel()
        sys.exit("record %d (%s): %s" % (done + 1, dn, e))
    db.transaction_commit()
    print("loaded %d records in %.2f s" % (done, time.monotonic() - started))


if __name__ == "__main__":
    main()
