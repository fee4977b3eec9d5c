"""Writes the generated files of the retrieval corpus (tests/data/rag_corpus/): three PDFs whose
facts sit on known pages, a .docx with Heading styles, and the near-miss documents (Markdown on
the topics the uncovered questions of rag_uncovered.jsonl ask about, lacking the facts asked).
Every run writes the same content (the PDF writer puts in no dates, the .docx zip gets fixed
timestamps; only another zlib may compress the .docx differently), so the files are committed.
Run this again after editing the texts below, and check that the questions in
rag_questions.jsonl and rag_uncovered.jsonl still hold.

    .venv/bin/python -m tests.data.make_rag_corpus
"""

from __future__ import annotations

import io
import textwrap
import zipfile
from pathlib import Path

import docx

from tests.ingest.samples import pdf_bytes

CORPUS = Path(__file__).resolve().parent / "rag_corpus"
LINE_CHARS = 85  # Helvetica 12pt on a Letter page with 1-inch margins

# The employee handbook: page 2 gifts, 3 probation and reviews, 4 hours and overtime,
# 5 the Speak-Up line, 6 leaving the company.
HANDBOOK = [
    """Employee Handbook, Kestrel Ridge Engineering, edition 2024.
Welcome to Kestrel Ridge Engineering. We design and build hydraulic test benches for
shipyards and offshore suppliers, and employ about 420 people at our headquarters at
14 Harbour Road, Aberdale. This handbook summarises the rules that apply to every employee.
Detailed policies on leave, remote work, expenses and IT security are published separately
in the Kestrel People portal. Questions about the handbook go to the People team.""",
    """Code of conduct.
Treat colleagues, customers and suppliers with respect. Gifts and hospitality from suppliers
or customers worth more than 50 EUR must be declared in the Gift Register within 7 days of
receiving them; cash gifts are never accepted. A possible conflict of interest, such as a
relative working for a supplier, is disclosed to the Compliance Officer, Tomas Berg. A side job
next to your employment needs written approval from your manager and HR.""",
    """Probation and performance.
New employees serve a probation period of 6 months. Goals are agreed with your manager in
January, a short check-in takes place in June, and the annual performance review, called the
Compass Review, takes place in November. Salary adjustments that follow from the Compass
Review take effect on 1 April. Training needs are recorded during the review and funded from
the training budget of your department.""",
    """Working hours and overtime.
The standard working week is 38.5 hours. Flexitime applies: you may start and finish your day
at any time between 07:00 and 19:00, as long as core hours are respected. Overtime must be
approved in advance by your manager. It is compensated as time off in lieu, which must be
taken within 60 days, or it lapses. Nobody may work more than 10 hours in a day; night work
is limited to the shift teams of the test hall.""",
    """Raising concerns: the Speak-Up line.
If you see misconduct, fraud or a safety risk, raise it with your manager or through the
Speak-Up line on 0800 555 0199. The line is open 24 hours a day and you may stay anonymous.
Every report is read by the company ombudsperson, Ingrid Solberg, who confirms receipt and
answers within 5 working days. Retaliation against anyone who raises a concern in good faith
is treated as gross misconduct.""",
    """Leaving the company.
The notice period is 2 weeks during probation and 3 months after probation, for both sides.
Return your laptop, access badge and P-Card within 5 working days of your last working day.
HR invites you to an exit interview in your last month. Unused annual leave is paid out with
the final salary. A reference letter is issued on request.""",
]

# The procurement policy: page 2 quotes and BuyDesk, 3 suppliers, 4 orders and invoices,
# 5 contract signatures.
PROCUREMENT = [
    """Procurement Policy, Kestrel Ridge Engineering.
This policy applies to every purchase of goods and services made on behalf of Kestrel Ridge
Engineering, whatever the budget it is charged to. It is owned by the Head of Procurement,
Henrik Dahl. Buying well means fair competition between suppliers, documented decisions and
the separation of duties between the person who orders and the person who pays.""",
    """Purchase requests and quotes.
Raise every purchase request in BuyDesk before anything is ordered. A purchase up to
10,000 EUR needs one written quote. From 10,000 EUR up to 50,000 EUR you need three written
quotes, compared in BuyDesk. Above 50,000 EUR Procurement runs a formal tender. Splitting an
order to stay under a threshold is not allowed.""",
    """Approved suppliers.
Buy only from suppliers on the approved supplier list. To add a new supplier, send form
SUP-19 to Procurement with the supplier's bank details and company registration; Procurement
then carries out sanctions screening and a credit check, which takes up to 10 working days.
Approved suppliers are re-assessed every 2 years.""",
    """Purchase orders and invoices.
Every order needs a purchase order (PO) number; PO numbers have ten digits and start with 45.
Suppliers send their invoices to invoices@kestrelridge.example, quoting the PO number.
Invoices without a PO number are returned to the supplier unpaid. Standard payment terms are
30 days net from the invoice date.""",
    """Contracts and signatures.
A department director signs contracts worth up to 100,000 EUR. Contracts above 100,000 EUR
are signed by the Chief Financial Officer, Anders Vik. Any contract that runs longer than
3 years, or that includes a penalty clause, needs a review by Legal first: request it with
form LEX-2.""",
]

# The building guide: page 2 reception and visitors, 3 parking, 4 meeting rooms, 5 fire
# safety, 6 other services.
BUILDING = [
    """Building Guide, Harbour Road campus.
The campus at 14 Harbour Road, Aberdale has three buildings: building A holds the offices,
building B the assembly workshop and the test hall, and building C the canteen and the large
conference hall. This guide explains how to get in, where to park, how to book rooms and what
to do in an emergency.""",
    """Reception and visitors.
The reception in building A is staffed from 07:00 to 19:00 on working days. Register visitors
in the Visitor app by the day before their visit; they receive a visitor badge at reception
and must be accompanied at all times. Deliveries go to the goods entrance of building B,
which is open from 07:00 to 15:00.""",
    """Parking and charging.
The parking garage under building A opens at 06:00 and the parking garage closes at 22:00 on
weekdays; it stays closed at weekends. Parking needs a P-Card, which you apply for at
reception. Electric vehicle charging bays are on level -1; each car may charge for at most
4 hours a day. The bicycle cellar has 120 spaces, with showers next to it.""",
    """Meeting rooms.
Book meeting rooms in RoomFinder. A booking longer than 2 hours needs approval from
Facilities. Cancel a booking you no longer need at least 24 hours ahead; a room that is not
checked in within 15 minutes of the start is released. The conference hall Maelstrom in
building C is booked through Facilities only.""",
    """Fire safety.
When the fire alarm sounds, leave the building at once by the marked escape routes and do not
use the lifts. Assembly point B is on the north lawn, next to the flagpoles. Each floor has
two fire wardens, who wear yellow vests and check that everyone is out. Evacuation drills are
held twice a year, in April and October.""",
    """Other services.
Lost property is kept at reception for 30 days. Workshop staff have lockers in building B.
The offices are cleaned every evening after 18:00. To report a fault, such as heating,
lighting or a leak, use the Facilities Request form FR-3 in Kestrel Help.""",
]

# The onboarding guide (.docx): a title, a Heading 1 and a paragraph per section, then a
# checklist table under its own heading.
ONBOARDING_TITLE = "Onboarding guide for new employees"
ONBOARDING = {
    "Before your first day": (
        "Your manager opens an ONB-Start ticket in Kestrel Help at least 10 working days before "
        "you join, so that your laptop, accounts and access badge are ready on your first day."
    ),
    "Your first day": (
        "Come to the reception of building A at 08:30 on your first day. You receive your access "
        "badge there and meet your onboarding buddy, a colleague from another team who answers "
        "your questions during your first 3 months."
    ),
    "Your first two weeks": (
        "Complete the mandatory security training CyberSafe 101 within 14 days of your start "
        "date. Before you enter the workshop or the test hall, attend the health and safety "
        "induction, HSE-Intro, which runs every Tuesday."
    ),
    "Benefits": (
        "Enrol in the company pension scheme and the health insurance within 30 days, in the "
        "Kestrel People portal. The company pays 6% of your base salary into the pension scheme. "
        "A leased bicycle is offered through salary sacrifice."
    ),
}
CHECKLIST = [
    ["When", "Task", "Who"],
    ["Day 1", "Collect badge and laptop", "New employee"],
    ["Week 1", "Set up multi-factor authentication", "New employee"],
    ["Week 2", "CyberSafe 101 completed", "New employee"],
    ["Month 1", "Benefits enrolment done", "New employee"],
    ["Month 3", "Onboarding review meeting", "Manager"],
]


# Near misses: each shares a topic with questions in rag_uncovered.jsonl (the gym, the guest
# Wi-Fi, the canteen, payday, study leave) and holds facts of its own, but not the one asked.
NEAR_MISSES = {
    "hr/benefits.md": """# Benefits at a glance

## Health insurance

Every employee is covered by the group health insurance with Nordhavn Health from the first day.
Partners and children can be added at a reduced premium in the Kestrel People portal.

## Fitness

Kestrel Ridge pays up to 30 EUR per month towards a membership of a gym or sports club of your
choice. Claim it once per quarter in Claimly with the membership invoice.

## Employee assistance programme

Confidential counselling on personal, financial or legal worries is free for employees and
their families: call the assistance line on 0800 555 0123, open every day from 08:00 to 22:00.

## Long service

After 10 years of service you receive one extra day of annual leave per year, and a long-service
gift chosen from the catalogue in the Kestrel People portal.
""",
    "hr/training.md": """# Learning and development

## Personal training budget

Every employee has a personal training budget of 1,200 EUR per calendar year for courses,
books and e-learning. Courses are booked in Kestrel Learn; the budget does not carry over.

## Conferences

Attending an external conference needs approval from your manager at least 4 weeks ahead. The
conference fee is paid from the training budget; travel follows the expense policy.

## Certifications

Exam fees for professional certifications are reimbursed once the exam is passed. Register the
certificate in Kestrel Learn so that it appears in your skills profile.

## Language courses

English and Norwegian language courses are offered in house twice a week during working hours,
at no cost to your training budget.
""",
    "it/network.md": """# Network, Wi-Fi and printing

## Wi-Fi for employees

Company laptops connect automatically to the KR-Corp network with a device certificate. Personal
phones may use the KR-Staff network after registering in Kestrel Help.

## Wi-Fi for guests

Visitors use the KR-Guest network. Reception hands out a personal access code with the visitor
badge; each code is valid for 24 hours.

## VPN

The GlobalProtect VPN client is installed on every company laptop, on Windows and on macOS. It
connects automatically when you are outside the office network.

## Printing

All printers use Follow-Me printing: send the job to the KR-Print queue and release it at any
printer with your access badge. Colour printing is limited to 200 pages a month per person.
""",
    "facilities/canteen.md": """# Canteen and catering

## The canteen

The canteen on the ground floor of building C serves a hot lunch from 11:30 to 13:30 on working
days, with a vegetarian dish every day. The weekly menu is published in Kestrel Help.

## Paying

Meals are paid with your access badge and deducted from the next salary. Cash is not accepted.

## Catering for meetings

Coffee, sandwiches and lunch for a meeting are ordered from the canteen with form CAT-1 at least
3 working days ahead, charged to the cost centre of the person who orders.
""",
    "finance/payroll.md": """# Payroll

## Payslips

Payslips are published every month in the Kestrel People portal; paper payslips are no longer
sent. Keep them for your tax return.

## Changing your bank account

To have your salary paid into another account, submit form PAY-4 in the Kestrel People portal
before the 10th of the month; a later change takes effect the month after.

## Questions

Questions about your salary, deductions or tax code go to the payroll team at
payroll@kestrelridge.example.
""",
}


def pages(texts: list[str]) -> list[str]:
    """Each page's paragraph wrapped into lines that fit the page."""
    return ["\n".join(textwrap.wrap(" ".join(text.split()), LINE_CHARS)) for text in texts]


def fixed_zip(data: bytes) -> bytes:
    """The zip rewritten with a fixed timestamp on every member, so the bytes are the same."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for member in source.infolist():
            info = zipfile.ZipInfo(member.filename, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(info, source.read(member))
    return out.getvalue()


def onboarding_docx() -> bytes:
    document = docx.Document()
    document.add_paragraph(ONBOARDING_TITLE, style="Title")
    for heading, text in ONBOARDING.items():
        document.add_paragraph(heading, style="Heading 1")
        document.add_paragraph(text, style="Normal")
    document.add_paragraph("Checklist", style="Heading 1")
    table = document.add_table(rows=len(CHECKLIST), cols=len(CHECKLIST[0]))
    for row, values in zip(table.rows, CHECKLIST, strict=True):
        for cell, value in zip(row.cells, values, strict=True):
            cell.text = value
    out = io.BytesIO()
    document.save(out)
    return fixed_zip(out.getvalue())


def files() -> dict[str, bytes]:
    """Each generated file of the corpus by its path there."""
    return {
        "hr/employee-handbook.pdf": pdf_bytes(pages(HANDBOOK)),
        "finance/procurement.pdf": pdf_bytes(pages(PROCUREMENT)),
        "facilities/building-guide.pdf": pdf_bytes(pages(BUILDING)),
        "hr/onboarding.docx": onboarding_docx(),
        **{name: text.encode() for name, text in NEAR_MISSES.items()},
    }


def main() -> None:
    for name, data in files().items():
        (CORPUS / name).write_bytes(data)
        print(f"wrote {CORPUS.name}/{name} ({len(data):,} bytes)")


if __name__ == "__main__":
    main()
