package secret

// keywordSet finds which of a small set of keywords occur in a text, ASCII
// case-insensitively, in one pass. It is an Aho-Corasick automaton compiled
// to a dense DFA (one table lookup per byte). Unlike the leftmost-match
// libraries, it reports every keyword including overlapping ones ("token"
// inside "_authtoken"), which a prefilter needs: a missed keyword is a
// missed secret.
type keywordSet struct {
	delta []int32    // state*256 + byte -> next state
	out   [][]uint16 // state -> keyword indexes ending here (via suffix links)
}

var fold [256]byte

func init() {
	for i := range fold {
		c := byte(i)
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		fold[i] = c
	}
}

func newKeywordSet(words []string) *keywordSet {
	// Trie.
	type node struct {
		next map[byte]int32
		out  []uint16
	}
	nodes := []node{{next: map[byte]int32{}}}
	for wi, w := range words {
		s := int32(0)
		for i := 0; i < len(w); i++ {
			c := fold[w[i]]
			nx, ok := nodes[s].next[c]
			if !ok {
				nodes = append(nodes, node{next: map[byte]int32{}})
				nx = int32(len(nodes) - 1)
				nodes[s].next[c] = nx
			}
			s = nx
		}
		nodes[s].out = append(nodes[s].out, uint16(wi))
	}
	// Breadth-first: suffix links, outputs, dense transitions.
	ks := &keywordSet{delta: make([]int32, len(nodes)*256), out: make([][]uint16, len(nodes))}
	link := make([]int32, len(nodes))
	queue := []int32{}
	for c := 0; c < 256; c++ {
		if nx, ok := nodes[0].next[byte(c)]; ok {
			ks.delta[c] = nx
			link[nx] = 0
			queue = append(queue, nx)
		}
	}
	ks.out[0] = nodes[0].out
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		if o := append(append([]uint16{}, nodes[s].out...), ks.out[link[s]]...); len(o) > 0 {
			ks.out[s] = o
		}
		for c := 0; c < 256; c++ {
			if nx, ok := nodes[s].next[byte(c)]; ok {
				link[nx] = ks.delta[int(link[s])*256+c]
				ks.delta[int(s)*256+c] = nx
				queue = append(queue, nx)
			} else {
				ks.delta[int(s)*256+c] = ks.delta[int(link[s])*256+c]
			}
		}
	}
	return ks
}

// each calls fn for every keyword occurrence in data with the keyword's
// index and the offset just past its end.
func (k *keywordSet) each(data []byte, fn func(kw, end int)) {
	s := int32(0)
	delta := k.delta
	for i, b := range data {
		s = delta[int(s)<<8|int(fold[b])]
		if outs := k.out[s]; outs != nil {
			for _, o := range outs {
				fn(int(o), i+1)
			}
		}
	}
}
