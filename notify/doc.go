// Package notify holds the texts the New Zealand Secure Email requirements
// (spec/001_acfa9b4a4c35e941.txt) prescribe and the messages the gateway
// generates from them:
//
//   - texts.go: Table 1 (certificate processing), Table 2 (warning texts),
//     Table 3 (warning codes), Table 4 (delivery messages) and the sentences
//     of R73/R74, verbatim, as data;
//   - recipient warnings (R76-R80) in three modes, wrap, prepend and header
//     (Apply, ApplyParts), as header edits plus a streamed new body that a
//     milter applies with ChangeHeader/AddHeader and ReplaceBody;
//   - the LISTSERVE test (R199: IsListMail) and the WORKSPACE list (R108:
//     Workspace), the engine's (package policy grades the warning);
//   - postmaster notices (R42, R77, R92), with the loop rules (R93, R95:
//     ShouldNotify) and the frequency limit (R94: RateLimiter);
//   - DELIVERY RECEIPT and NON DELIVERY REPORT (R73, R74, Table 4);
//   - ping replies (R96-R99);
//   - submission of generated mail to the MTA (Submitter: sendmail command
//     or SMTP on loopback) through an asynchronous bounded Queue.
//
// The package decides nothing about policy: which code applies, whether a
// warning is wanted and to whom a notice goes are the engine's decisions.
package notify
