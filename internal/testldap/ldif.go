package testldap

import (
	"encoding/base64"
	"strings"
)

// CountryLDIF is the entry of a country suffix ("c=NZ"), the root that
// certificate discovery searches under (R53).
func CountryLDIF(suffix string) string {
	_, c, _ := strings.Cut(suffix, "=")
	return "dn: " + suffix + "\nobjectClass: country\nc: " + c + "\n\n"
}

// DCALDIF is an organisation o=DOMAIN under suffix with its DCA entry:
// cn=domain-confidentiality-authority, mail
// domain-confidentiality-authority@DOMAIN, one userCertificate;binary
// value per DER certificate (RFC 3183 4.1, R53).
func DCALDIF(suffix, domain string, certs ...[]byte) string {
	var b strings.Builder
	b.WriteString("dn: o=" + domain + "," + suffix + "\nobjectClass: organization\no: " + domain + "\n\n")
	b.WriteString("dn: cn=domain-confidentiality-authority,o=" + domain + "," + suffix + "\nobjectClass: inetOrgPerson\n")
	b.WriteString("cn: domain-confidentiality-authority\nsn: DCA\nmail: domain-confidentiality-authority@" + domain + "\n")
	for _, der := range certs {
		b.WriteString("userCertificate;binary:: " + base64.StdEncoding.EncodeToString(der) + "\n")
	}
	b.WriteString("\n")
	return b.String()
}
