#!/usr/bin/perl
# slow-smtp.pl: an SMTP client that stops in the middle of DATA until told
# to go on. Used by the e2e tests to hold a mail transaction open (connect,
# EHLO, STARTTLS, MAIL, RCPT and part of the message already sent, so the
# milter has a session in progress) while the test does something to the
# milter, for example sends it SIGTERM.
#
#   slow-smtp.pl --port P [--server 127.0.0.1] [--local 127.0.0.2] [--tls]
#                --from A --to B --id X-TEST-ID --ctl DIR [--wait 30]
#
# Protocol with the test, through files in --ctl DIR:
#   DIR/in-data   created by us once half of the message has been sent
#   DIR/go        created by the test; we then send the rest and "."
#   DIR/reply     the server's reply to the final "." ("250 2.0.0 Ok: ...")
# Exit status: 0 if the message was accepted (2xx), 4 on a 4xx reply,
# 5 on a 5xx reply, 1 on any other failure (printed on stderr).
use strict;
use warnings;
use Getopt::Long;
use Net::SMTP;
use Time::HiRes qw(sleep time);

my %o = (server => '127.0.0.1', local => '127.0.0.2', timeout => 60, wait => 30, tls => 0);
GetOptions(\%o, 'server=s', 'port=i', 'local=s', 'from=s', 'to=s', 'id=s', 'ctl=s',
	'tls!', 'timeout=i', 'wait=i') or die "usage: see the head of $0\n";
for my $k (qw(port from to id ctl)) {
	die "slow-smtp: --$k is required\n" unless defined $o{$k};
}

sub put_file {
	my ($name, $text) = @_;
	open(my $fh, '>', "$o{ctl}/$name") or die "slow-smtp: $o{ctl}/$name: $!\n";
	print $fh $text;
	close($fh);
}

# finish: report the reply of the command that ended the transaction.
sub finish {
	my ($smtp, $stage) = @_;
	my $code = $smtp->code() // '000';
	my $msg = join('', $smtp->message() // '');
	$msg =~ s/\s+$//;
	my $line = "$code $msg";
	print "$stage: $line\n";
	put_file('reply', "$line\n");
	eval { $smtp->quit() };
	exit 0 if $code =~ /^2/;
	exit 4 if $code =~ /^4/;
	exit 5 if $code =~ /^5/;
	exit 1;
}

my $smtp = Net::SMTP->new($o{server},
	Port      => $o{port},
	LocalAddr => $o{local},
	Hello     => 'slow.e2e.test',
	Timeout   => $o{timeout},
) or die "slow-smtp: connect to $o{server}:$o{port}: $@\n";

if ($o{tls}) {
	$smtp->starttls(SSL_verify_mode => 0) or finish($smtp, 'STARTTLS');
}
$smtp->mail($o{from}) or finish($smtp, 'MAIL FROM');
$smtp->to($o{to}) or finish($smtp, 'RCPT TO');
$smtp->data() or finish($smtp, 'DATA');
$smtp->datasend("From: <$o{from}>\n", "To: <$o{to}>\n",
	"Subject: e2e in-flight $o{id}\n", "X-Test-Id: $o{id}\n", "\n",
	"First half of the body, sent before the pause.\n")
	or die "slow-smtp: datasend failed\n";
put_file('in-data', "");

my $deadline = time() + $o{wait};
until (-e "$o{ctl}/go") {
	die "slow-smtp: no $o{ctl}/go after $o{wait}s\n" if time() > $deadline;
	sleep(0.05);
}
$smtp->datasend("Second half of the body, sent after the pause.\n")
	or die "slow-smtp: datasend failed\n";
$smtp->dataend();
finish($smtp, 'END OF DATA');
