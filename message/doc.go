// Package message is the bottom layer of the gateway (DESIGN.md, Layout):
// what every other package needs to read a message's header fields the same
// way. Today it holds the author (From:) parser, used by DMARC, the Table 3
// warnings 002/005, R76 verification, R66 and the notices, so that no two
// parts of the gateway can disagree about who a message says it is from.
//
// It imports no other package of this module; every package above may use
// it.
package message
