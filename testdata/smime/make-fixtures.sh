#!/usr/bin/env bash
# testdata/smime/make-fixtures.sh: makes the S/MIME test PKI with openssl
# (issue 14): run it from anywhere; it rewrites the files beside it.
#
#   ca.crt ca.key          the accredited test CA (R179-R180), valid 2015-2099, with
#                          crlDistributionPoints http://crl.test/ca.crl and
#                          ldap://ldap.test/cn=ca%2Cc=NZ?certificateRevocationList
#   agency-a-old.{crt,key} agency-a.govt.nz DCA, valid 2024-2046 (R37: older)
#   agency-a-new.{crt,key} agency-a.govt.nz DCA, valid 2025-2047 (R37: newest)
#   agency-b.{crt,key}     agency-b.govt.nz DCA, valid 2025-2047
#   revoked.{crt,key}      agency-r.govt.nz DCA, revoked in ca.crl
#   expired.{crt,key}      agency-e.govt.nz DCA, valid 2019-2020
#   future.{crt,key}       agency-f.govt.nz DCA, valid 2090-2099
#   untrusted.{crt,key}    agency-u.govt.nz DCA issued by rogue-ca (not an anchor)
#   rogue-ca.{crt,key}     a CA nobody trusts
#   ca.crl                 current CRL (2025 to 2045) listing revoked.crt
#   ca-expired.crl         CRL whose nextUpdate passed (2020 to 2021)
#   ca-empty.crl           current CRL listing nothing (the revocation lifted)
#
# With OUT=DIR the files are written to DIR instead (an end-to-end test
# makes its own PKI), and CDP_URL=URL replaces the http distribution point
# (e.g. http://127.0.0.1:PORT/ca.crl, served by the test on loopback).
#
# Every DCA certificate has CN domain-confidentiality-authority (R45-R46)
# and the rfc822Name domain-confidentiality-authority@DOMAIN (R47), RSA-2048.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
CDP_URL=${CDP_URL:-http://crl.test/ca.crl}
if [ -n "${OUT:-}" ]; then mkdir -p "$OUT" && cd "$OUT"; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat >"$tmp/ca.cnf" <<EOF
[ ca ]
default_ca = testca
[ testca ]
dir = .
database = \$ENV::DB
new_certs_dir = \$ENV::NEWCERTS
serial = \$ENV::SERIAL
crlnumber = \$ENV::CRLNUMBER
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
email_in_dn = no
[ anything ]
commonName = supplied
organizationName = optional
countryName = optional
emailAddress = optional
[ ca_ext ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ dca_ext ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = emailProtection
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = email:\$ENV::DCA_EMAIL
crlDistributionPoints = URI:$CDP_URL, URI:ldap://ldap.test/cn=ca%2Cc=NZ?certificateRevocationList
[ crl_ext ]
authorityKeyIdentifier = keyid
EOF

# newca NAME CN: a self-signed CA valid 2024-2049, with its own CA database.
newca() {
	local name=$1 cn=$2
	mkdir -p "$tmp/$name/new"
	: >"$tmp/$name/index.txt"
	echo 1000 >"$tmp/$name/serial"
	echo 01 >"$tmp/$name/crlnumber"
	openssl req -new -newkey rsa:2048 -nodes -keyout "$name.key" -subj "/C=NZ/O=nzsecure-milter tests/CN=$cn" \
		-out "$tmp/$name.csr" 2>/dev/null
	cadb "$name" DCA_EMAIL=unused openssl ca -batch -config "$tmp/ca.cnf" -selfsign -keyfile "$name.key" \
		-in "$tmp/$name.csr" -out "$name.crt" -extensions ca_ext -startdate 20150101000000Z -enddate 20991231235959Z \
		-notext 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
}
# cadb NAME VAR=VALUE... CMD...: runs CMD with the CA database of NAME.
cadb() {
	local name=$1
	shift
	env DB="$tmp/$name/index.txt" NEWCERTS="$tmp/$name/new" SERIAL="$tmp/$name/serial" CRLNUMBER="$tmp/$name/crlnumber" "$@"
}
# dca FILE DOMAIN CA START END: a DCA certificate for DOMAIN issued by CA.
dca() {
	local file=$1 domain=$2 ca=$3 start=$4 end=$5
	openssl req -new -newkey rsa:2048 -nodes -keyout "$file.key" \
		-subj "/C=NZ/O=$domain/CN=domain-confidentiality-authority" -out "$tmp/$file.csr" 2>/dev/null
	cadb "$ca" DCA_EMAIL="domain-confidentiality-authority@$domain" openssl ca -batch -config "$tmp/ca.cnf" \
		-cert "$ca.crt" -keyfile "$ca.key" -in "$tmp/$file.csr" -out "$file.crt" -extensions dca_ext \
		-startdate "$start" -enddate "$end" -notext 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
}
# crl FILE LAST NEXT: a CRL of the test CA with the current revocations.
crl() {
	cadb ca DCA_EMAIL=unused openssl ca -batch -config "$tmp/ca.cnf" -cert ca.crt -keyfile ca.key -gencrl \
		-crlexts crl_ext -crl_lastupdate "$2" -crl_nextupdate "$3" -out "$tmp/crl.pem" 2>/dev/null
	openssl crl -in "$tmp/crl.pem" -outform DER -out "$1"
}

newca ca "nzsecure-milter test Secure Email CA"
newca rogue-ca "rogue test CA"
dca agency-a-old agency-a.govt.nz ca 20240101000000Z 20460101000000Z
dca agency-a-new agency-a.govt.nz ca 20250101000000Z 20470101000000Z
dca agency-b agency-b.govt.nz ca 20250101000000Z 20470101000000Z
dca revoked agency-r.govt.nz ca 20250101000000Z 20470101000000Z
dca expired agency-e.govt.nz ca 20190101000000Z 20200101000000Z
dca future agency-f.govt.nz ca 20900101000000Z 20990101000000Z
dca untrusted agency-u.govt.nz rogue-ca 20250101000000Z 20470101000000Z
crl ca-empty.crl 20250101000000Z 20450101000000Z
cadb ca DCA_EMAIL=unused openssl ca -batch -config "$tmp/ca.cnf" -cert ca.crt -keyfile ca.key \
	-revoke revoked.crt -crl_reason keyCompromise 2>/dev/null
crl ca.crl 20250101000000Z 20450101000000Z
crl ca-expired.crl 20200101000000Z 20210101000000Z
chmod 0644 ./*.key
echo "make-fixtures.sh: wrote $(ls ./*.crt ./*.key ./*.crl | wc -l) files in $(pwd)"
