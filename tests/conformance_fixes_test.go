package tests

import (
	"strings"
	"testing"
)

// TestConformanceFixes checks the answers the front gives where go-nfs
// alone was wrong (each found by TestConformance's review): the layout of
// each reply is decoded to its end.
func TestConformanceFixes(t *testing.T) {
	c := NewCluster(t, ClusterOptions{})
	c.CreateVolume("other", 3, 1<<20)
	cl, err := Mount(c.NFSAddr(0), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	other, err := Mount(c.NFSAddr(0), "/other")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	f, err := cl.Target.OpenFile("file", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("keep me"))
	f.Close()
	if _, err := cl.Target.Mkdir("dir", 0o755); err != nil {
		t.Fatal(err)
	}
	root, file, dir := mustHandle(t, cl, "."), mustHandle(t, cl, "file"), mustHandle(t, cl, "dir")
	otherRoot := mustHandle(t, other, ".")
	xids := &xidSource{next: 0x70000}
	r := newRawClient(t, c.NFSAddr(0), 1000, 1000, xids)

	// LINK into another volume: XDEV, LINK3resfail = post_op_attr, wcc_data.
	st, d := r.nfs("LINK across volumes", 15, (&xdrBuf{}).opaque(file).dirop(otherRoot, "y").b)
	if st != 18 {
		t.Fatalf("LINK across volumes: %s, want NFS3ERR_XDEV", stName(st))
	}
	d.postOpAttr()
	d.wcc()
	d.end()
	// LINK of a bad handle: BADHANDLE, not ENOENT.
	if st, _ := r.nfs("LINK of a bad handle", 15, (&xdrBuf{}).opaque(make([]byte, 8)).dirop(root, "z").b); st != 10001 {
		t.Fatalf("LINK of an 8-byte handle: %s, want NFS3ERR_BADHANDLE", stName(st))
	}
	// RENAME into another volume: XDEV with two wcc_data.
	st, d = r.nfs("RENAME across volumes", 14, (&xdrBuf{}).dirop(root, "file").dirop(otherRoot, "file").b)
	if st != 18 {
		t.Fatalf("RENAME across volumes: %s, want NFS3ERR_XDEV", stName(st))
	}
	d.wcc()
	d.wcc()
	d.end()

	// RMDIR of a regular file is ENOTDIR and the file survives; REMOVE of
	// a directory is EISDIR.
	root0 := newRawClient(t, c.NFSAddr(0), 0, 0, xids) // squashed: the sticky root lets the owner (nobody) remove
	if st, _ := root0.nfs("RMDIR of a file", 13, (&xdrBuf{}).dirop(root, "file").b); st != 20 {
		t.Fatalf("RMDIR of a file: %s, want NFS3ERR_NOTDIR", stName(st))
	}
	if got, err := cl.ReadHandle(file); err != nil || string(got) != "keep me" {
		t.Fatalf("after RMDIR of a file it reads %q, %v", got, err)
	}
	if st, _ := root0.nfs("REMOVE of a directory", 12, (&xdrBuf{}).dirop(root, "dir").b); st != 21 {
		t.Fatalf("REMOVE of a directory: %s, want NFS3ERR_ISDIR", stName(st))
	}

	// LOOKUP of a 256-byte name: NAMETOOLONG.
	if st, _ := r.nfs("LOOKUP of a long name", 3, (&xdrBuf{}).dirop(root, strings.Repeat("n", 256)).b); st != 63 {
		t.Fatalf("LOOKUP of a 256-byte name: %s, want NFS3ERR_NAMETOOLONG", stName(st))
	}
	// READ of a directory: ISDIR, not EIO.
	if st, _ := r.nfs("READ of a directory", 6, (&xdrBuf{}).opaque(dir).u64(0).u32(10).b); st != 21 {
		t.Fatalf("READ of a directory: %s, want NFS3ERR_ISDIR", stName(st))
	}
	// FSSTAT: 4-byte invarsec, the reply ends there.
	st, d = r.nfs("FSSTAT", 18, (&xdrBuf{}).opaque(root).b)
	if st != 0 {
		t.Fatalf("FSSTAT: %s", stName(st))
	}
	d.postOpAttr()
	for i := 0; i < 6; i++ {
		d.u64()
	}
	d.u32()
	d.end()
	// PATHCONF: no link limit, chown restricted.
	st, d = r.nfs("PATHCONF", 20, (&xdrBuf{}).opaque(root).b)
	if st != 0 {
		t.Fatalf("PATHCONF: %s", stName(st))
	}
	d.postOpAttr()
	if linkmax, namemax := d.u32(), d.u32(); linkmax < 2 || namemax != 255 {
		t.Fatalf("PATHCONF linkmax %d name_max %d", linkmax, namemax)
	}
	noTrunc, chownRestricted := d.bool(), d.bool()
	d.bool()
	d.bool()
	d.end()
	if !noTrunc || !chownRestricted {
		t.Fatalf("PATHCONF no_trunc %v chown_restricted %v, want both true", noTrunc, chownRestricted)
	}
	// GETATTR: setuid bits are kept and ctime moves on with any change.
	st, d = r.nfs("GETATTR", 1, (&xdrBuf{}).opaque(file).b)
	if st != 0 {
		t.Fatalf("GETATTR: %s", stName(st))
	}
	before := d.fattr()
	d.end()
	owner := newRawClient(t, c.NFSAddr(0), 65534, 65534, xids)
	if st, _ := owner.nfs("SETATTR mode", 2, (&xdrBuf{}).opaque(file).sattrMode(0o4755).u32(0).b); st != 0 {
		t.Fatalf("SETATTR mode 04755 by the owner: %s", stName(st))
	}
	_, d = r.nfs("GETATTR", 1, (&xdrBuf{}).opaque(file).b)
	after := d.fattr()
	d.end()
	if after.Ctime == before.Ctime {
		t.Fatalf("ctime did not move on a mode change: %+v", after.Ctime)
	}
	if after.Mode != 0o4755 {
		t.Fatalf("mode after SETATTR 04755 = %04o (go-nfs masks 07777 to 0777)", after.Mode)
	}
	// MOUNT DUMP is an empty list, UMNTALL is void (go-nfs: PROG_MISMATCH).
	if acc, body := r.call(100005, 3, 2, nil); acc != 0 || len(body) != 4 || body[3] != 0 {
		t.Fatalf("MOUNT DUMP: accept %d, body %x; want SUCCESS and an empty list", acc, body)
	}
	if acc, body := r.call(100005, 3, 4, nil); acc != 0 || len(body) != 0 {
		t.Fatalf("MOUNT UMNTALL: accept %d, body %x; want SUCCESS and no body", acc, body)
	}
	// LOOKUP returns the same true attributes as GETATTR, and the handle.
	st, d = r.nfs("LOOKUP", 3, (&xdrBuf{}).dirop(root, "file").b)
	if st != 0 {
		t.Fatalf("LOOKUP: %s", stName(st))
	}
	fh := d.opaque()
	obj := d.postOpAttr()
	d.postOpAttr()
	d.end()
	if string(fh) != string(file) || obj == nil || *obj != after {
		t.Fatalf("LOOKUP attributes %+v differ from GETATTR's %+v", obj, after)
	}

	// The attributes in replies go-nfs builds (SETATTR's wcc_data here)
	// are the true ones: setuid kept, ctime its own, the volume's fsid.
	st, d = owner.nfs("SETATTR mode again", 2, (&xdrBuf{}).opaque(file).sattrMode(0o2750).u32(0).b)
	if st != 0 {
		t.Fatalf("SETATTR mode 02750: %s", stName(st))
	}
	post := d.wcc()
	d.end()
	if post == nil || post.Mode != 0o2750 || post.FSID != after.FSID || post.FileID != after.FileID {
		t.Fatalf("SETATTR's post-op attributes %+v: want mode 02750 and GETATTR's fsid %d", post, after.FSID)
	}
	if gst, gd := r.nfs("GETATTR after SETATTR", 1, (&xdrBuf{}).opaque(file).b); gst != 0 || gd.fattr() != *post {
		t.Fatalf("GETATTR after SETATTR differs from SETATTR's post-op attributes %+v", *post)
	}
	// Each volume is its own file system: fsids differ, and are the same
	// through every node.
	st, d = r.nfs("GETATTR other root", 1, (&xdrBuf{}).opaque(otherRoot).b)
	if st != 0 {
		t.Fatalf("GETATTR of the other volume: %s", stName(st))
	}
	if oa := d.fattr(); oa.FSID == after.FSID {
		t.Fatalf("two volumes share fsid %d", oa.FSID)
	}
	r1 := newRawClient(t, c.NFSAddr(1), 1000, 1000, xids)
	if st, d := r1.nfs("GETATTR via node 1", 1, (&xdrBuf{}).opaque(file).b); st != 0 || d.fattr().FSID != after.FSID {
		t.Fatalf("node 1 reports another fsid for the same file (status %s)", stName(st))
	}
	// WRITE's and CREATE's attributes too.
	st, d = owner.nfs("WRITE", 7, writeArgs(file, 0, 2, []byte("KEEP")))
	if st != 0 {
		t.Fatalf("WRITE: %s", stName(st))
	}
	if wa := d.wcc(); wa == nil || wa.Mode != 0o2750 || wa.FSID != after.FSID || wa.Size != 7 {
		t.Fatalf("WRITE's post-op attributes %+v", wa)
	}

	// MKDIR over a file: EEXIST (go-nfs's MkdirAll said ENOTDIR).
	if st, _, _ := dirOp(r, "MKDIR over a file", 9, (&xdrBuf{}).dirop(root, "file").sattrMode(0o755).b); st != st3Exist {
		t.Fatalf("MKDIR over a file: %s, want NFS3ERR_EXIST", stName(st))
	}
	// SETATTR of a directory's size: ISDIR, as knfsd.
	if st, _ := root0.nfs("SETATTR size of a dir", 2, (&xdrBuf{}).opaque(dir).u32(0).u32(0).u32(0).u32(1).u64(0).u32(0).u32(0).u32(0).b); st != 21 {
		t.Fatalf("SETATTR size of a directory: %s, want NFS3ERR_ISDIR", stName(st))
	}
	// EXCLUSIVE create retried with a new XID and the same verifier (the
	// first reply was lost): success, the same file; another verifier:
	// EEXIST.
	st, efh, _ := dirOp(r, "CREATE EXCLUSIVE", 8, exclusiveArgs(root, "excl", 0x0102030405060708))
	if st != 0 {
		t.Fatalf("CREATE EXCLUSIVE: %s", stName(st))
	}
	st, again, _ := dirOp(r1, "CREATE EXCLUSIVE retried", 8, exclusiveArgs(root, "excl", 0x0102030405060708))
	if st != 0 || string(again) != string(efh) {
		t.Fatalf("CREATE EXCLUSIVE retried with the same verifier through node 1: %s, handle %x want %x", stName(st), again, efh)
	}
	if st, _, _ := dirOp(r, "CREATE EXCLUSIVE other verifier", 8, exclusiveArgs(root, "excl", 0x99)); st != st3Exist {
		t.Fatalf("CREATE EXCLUSIVE with another verifier: %s, want NFS3ERR_EXIST", stName(st))
	}
}
