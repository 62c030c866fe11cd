package bridge

import (
	"fmt"
	"net"
	"sort"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// tableName is the nftables table the driver owns, in the bridge
// namespace's ip family. Nothing else of the ruleset is touched.
const tableName = "moss"

// firewall writes the driver's table through an nftables netlink socket
// opened in the bridge namespace.
type firewall struct {
	conn *nftables.Conn
}

func newFirewall(ns netns.NsHandle) (*firewall, error) {
	var conn *nftables.Conn
	err := inNetns(ns, func() error {
		var err error
		// Lasting: the socket is made here, in ns (a transient one would be
		// made by whichever thread flushes).
		conn, err = nftables.New(nftables.AsLasting())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return &firewall{conn: conn}, nil
}

func (f *firewall) close() {
	if f != nil && f.conn != nil {
		_ = f.conn.CloseLasting()
	}
}

// apply replaces the table with one for nets, in one transaction: the
// table is created (if missing), deleted and written anew, so that what
// the kernel has is exactly what the state says, after a restart too.
// Without networks the table is removed. In nft syntax:
//
//	table ip moss {
//		set bridges { type ifname; elements = { moss0, mossbr-… } }
//		chain forward {
//			type filter hook forward priority filter; policy accept;
//			iifname B oifname B accept              # each bridge
//			iifname @bridges oifname @bridges drop  # between networks
//			iifname I drop; oifname I drop          # each internal bridge
//		}
//		chain postrouting {
//			type nat hook postrouting priority srcnat; policy accept;
//			ip saddr S oifname != B masquerade       # each non-internal network
//		}
//	}
func (f *firewall) apply(nets []*network) error {
	sort.Slice(nets, func(i, j int) bool { return nets[i].Bridge < nets[j].Bridge })
	c := f.conn
	table := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: tableName}
	c.AddTable(table)
	c.DelTable(table)
	if len(nets) == 0 {
		return f.flush()
	}
	c.AddTable(table)
	set := &nftables.Set{Table: table, Name: "bridges", KeyType: nftables.TypeIFName}
	var elems []nftables.SetElement
	for _, n := range nets {
		elems = append(elems, nftables.SetElement{Key: ifname(n.Bridge)})
	}
	if err := c.AddSet(set, elems); err != nil {
		return fmt.Errorf("nftables set: %w", err)
	}
	accept := nftables.ChainPolicyAccept
	forward := c.AddChain(&nftables.Chain{
		Name: "forward", Table: table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept,
	})
	post := c.AddChain(&nftables.Chain{
		Name: "postrouting", Table: table, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &accept,
	})
	rule := func(chain *nftables.Chain, exprs ...expr.Any) {
		c.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: exprs})
	}
	for _, n := range nets {
		rule(forward, append(append(ifMatch(expr.MetaKeyIIFNAME, n.Bridge, true), ifMatch(expr.MetaKeyOIFNAME, n.Bridge, true)...), verdict(expr.VerdictAccept))...)
	}
	rule(forward,
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID},
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID},
		verdict(expr.VerdictDrop))
	for _, n := range nets {
		if n.Internal {
			rule(forward, append(ifMatch(expr.MetaKeyIIFNAME, n.Bridge, true), verdict(expr.VerdictDrop))...)
			rule(forward, append(ifMatch(expr.MetaKeyOIFNAME, n.Bridge, true), verdict(expr.VerdictDrop))...)
			continue
		}
		subnet := n.ipam.Subnet
		mask := net.CIDRMask(subnet.Bits(), 32)
		exprs := []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: subnet.Addr().AsSlice()},
		}
		exprs = append(exprs, ifMatch(expr.MetaKeyOIFNAME, n.Bridge, false)...)
		rule(post, append(exprs, &expr.Masq{})...)
	}
	return f.flush()
}

func (f *firewall) flush() error {
	if err := f.conn.Flush(); err != nil {
		return fmt.Errorf("nftables table %s: %w", tableName, err)
	}
	return nil
}

// ifname is an interface name as nftables compares it: 16 bytes, padded.
func ifname(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

func ifMatch(key expr.MetaKey, name string, eq bool) []expr.Any {
	op := expr.CmpOpEq
	if !eq {
		op = expr.CmpOpNeq
	}
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: ifname(name)},
	}
}

func verdict(k expr.VerdictKind) expr.Any { return &expr.Verdict{Kind: k} }
