"""Word lists the generator draws from: places, trades, names, in Chinese and English.

Chinese words carry their pinyin so that e-mail addresses and domains look like the ones real
companies and people use. Regions are stored in canonical form: the province's short name.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Region:
    """A province-level region: canonical name, cities with a district code, its sales team."""

    name: str
    cities: tuple[tuple[str, str], ...]  # (city, 6-digit administrative division code)
    team: str  # "east", "north" or "other" (served by key-account managers only)


REGIONS: tuple[Region, ...] = (
    Region("上海", (("上海", "310115"), ("上海", "310104"), ("上海", "310106")), "east"),
    Region("江苏", (("南京", "320106"), ("苏州", "320505"), ("无锡", "320214")), "east"),
    Region("浙江", (("杭州", "330106"), ("宁波", "330212"), ("温州", "330302")), "east"),
    Region("安徽", (("合肥", "340104"), ("芜湖", "340202")), "east"),
    Region("福建", (("福州", "350102"), ("厦门", "350203")), "east"),
    Region("山东", (("济南", "370102"), ("青岛", "370202"), ("烟台", "370602")), "east"),
    Region("江西", (("南昌", "360102"),), "east"),
    Region("北京", (("北京", "110105"), ("北京", "110108"), ("北京", "110101")), "north"),
    Region("天津", (("天津", "120101"), ("天津", "120116")), "north"),
    Region("河北", (("石家庄", "130102"), ("唐山", "130202"), ("保定", "130602")), "north"),
    Region("山西", (("太原", "140105"),), "north"),
    Region("内蒙古", (("呼和浩特", "150102"),), "north"),
    Region("辽宁", (("沈阳", "210102"), ("大连", "210202")), "north"),
    Region("吉林", (("长春", "220102"),), "north"),
    Region("黑龙江", (("哈尔滨", "230102"),), "north"),
    Region("广东", (("广州", "440106"), ("深圳", "440305"), ("东莞", "441900")), "other"),
    Region("四川", (("成都", "510107"),), "other"),
    Region("湖北", (("武汉", "420106"),), "other"),
    Region("湖南", (("长沙", "430104"),), "other"),
    Region("重庆", (("重庆", "500103"),), "other"),
    Region("陕西", (("西安", "610113"),), "other"),
    Region("香港", (("香港", "810000"),), "other"),
)

# (trade word in a company name, slug for its domain, industry): industries, sources, tags and
# regions are canonical values of validation/vocabularies.json (a test holds them to it)
TRADES: tuple[tuple[str, str, str], ...] = (
    ("信息科技", "tech", "信息技术"),
    ("软件", "soft", "信息技术"),
    ("网络科技", "net", "信息技术"),
    ("电子商务", "ecom", "批发和零售业"),
    ("智能制造", "im", "制造业"),
    ("机械", "mach", "制造业"),
    ("精密仪器", "pi", "制造业"),
    ("新材料", "nm", "制造业"),
    ("化工", "chem", "制造业"),
    ("生物医药", "bio", "制造业"),
    ("医院管理", "health", "医疗卫生"),
    ("健康管理", "care", "医疗卫生"),
    ("物流", "logistics", "交通运输和物流"),
    ("供应链管理", "scm", "交通运输和物流"),
    ("商贸", "trade", "批发和零售业"),
    ("连锁超市", "mart", "批发和零售业"),
    ("食品", "food", "制造业"),
    ("餐饮管理", "dining", "住宿和餐饮业"),
    ("酒店管理", "hotel", "住宿和餐饮业"),
    ("教育咨询", "edu", "教育"),
    ("文化传媒", "media", "文化体育和娱乐业"),
    ("建筑工程", "build", "建筑业"),
    ("房地产开发", "estate", "房地产业"),
    ("新能源", "energy", "能源与公用事业"),
    ("电力设备", "power", "制造业"),
    ("汽车零部件", "auto", "制造业"),
    ("投资管理", "invest", "金融业"),
    ("融资租赁", "lease", "金融业"),
    ("管理咨询", "consult", "租赁和商务服务业"),
    ("检测技术", "testing", "科学研究和技术服务业"),
    ("环保科技", "eco", "水利环境和公共设施"),
    ("农业发展", "agri", "农林牧渔业"),
)

# two-syllable trade names (字号) are built from these, pinyin beside each character
BRAND_SYLLABLES: tuple[tuple[str, str], ...] = (
    ("华", "hua"), ("盛", "sheng"), ("瑞", "rui"), ("泰", "tai"), ("恒", "heng"),
    ("鑫", "xin"), ("宏", "hong"), ("达", "da"), ("嘉", "jia"), ("明", "ming"),
    ("远", "yuan"), ("海", "hai"), ("天", "tian"), ("信", "xin"), ("博", "bo"),
    ("通", "tong"), ("立", "li"), ("正", "zheng"), ("安", "an"), ("和", "he"),
    ("兴", "xing"), ("隆", "long"), ("光", "guang"), ("新", "xin"), ("启", "qi"),
    ("汇", "hui"), ("中", "zhong"), ("联", "lian"), ("创", "chuang"), ("智", "zhi"),
    ("云", "yun"), ("星", "xing"), ("金", "jin"), ("永", "yong"), ("祥", "xiang"),
    ("丰", "feng"), ("源", "yuan"), ("诚", "cheng"), ("德", "de"), ("润", "run"),
    ("辰", "chen"), ("峰", "feng"), ("锦", "jin"), ("晨", "chen"), ("易", "yi"),
    ("亿", "yi"), ("科", "ke"), ("航", "hang"), ("万", "wan"), ("腾", "teng"),
)  # fmt: skip

COMPANY_FORMS = ("有限公司", "有限公司", "有限公司", "股份有限公司", "集团有限公司")

EN_COMPANY_WORDS = (
    "Apex", "Summit", "Blue River", "Northwind", "Evergreen", "Silverline", "Harbor",
    "Pioneer", "Crescent", "Redwood", "Atlas", "Beacon", "Granite", "Horizon", "Lumen",
    "Meridian", "Orchid", "Pinnacle", "Quantum", "Sterling", "Vertex", "Zenith", "Cobalt",
    "Falcon", "Keystone", "Maple", "Nova", "Oakridge", "Riverstone", "Sapphire",
)  # fmt: skip
EN_COMPANY_KINDS = (
    ("Technologies", "信息技术"), ("Software", "信息技术"), ("Logistics", "交通运输和物流"),
    ("Trading", "批发和零售业"), ("Foods", "制造业"), ("Healthcare", "医疗卫生"),
    ("Capital", "金融业"), ("Energy", "能源与公用事业"), ("Industries", "制造业"),
    ("Media", "文化体育和娱乐业"),
)  # fmt: skip
EN_COMPANY_FORMS = ("Ltd.", "Co., Ltd.", "Inc.", "Group", "Holdings Ltd.", "(China) Co., Ltd.")

# the most common surnames first, so the generator's skew resembles the population
SURNAMES: tuple[tuple[str, str], ...] = (
    ("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"),
    ("杨", "yang"), ("黄", "huang"), ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"),
    ("徐", "xu"), ("孙", "sun"), ("马", "ma"), ("朱", "zhu"), ("胡", "hu"),
    ("郭", "guo"), ("何", "he"), ("高", "gao"), ("林", "lin"), ("罗", "luo"),
    ("郑", "zheng"), ("梁", "liang"), ("谢", "xie"), ("宋", "song"), ("唐", "tang"),
    ("许", "xu"), ("韩", "han"), ("冯", "feng"), ("邓", "deng"), ("曹", "cao"),
    ("彭", "peng"), ("曾", "zeng"), ("肖", "xiao"), ("田", "tian"), ("董", "dong"),
    ("袁", "yuan"), ("潘", "pan"), ("于", "yu"), ("蒋", "jiang"), ("蔡", "cai"),
    ("余", "yu"), ("杜", "du"), ("叶", "ye"), ("程", "cheng"), ("苏", "su"),
    ("魏", "wei"), ("吕", "lv"), ("丁", "ding"), ("任", "ren"), ("沈", "shen"),
    ("欧阳", "ouyang"), ("司马", "sima"),
)  # fmt: skip
GIVEN_NAME_CHARS: tuple[tuple[str, str], ...] = (
    ("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"),
    ("丽", "li"), ("强", "qiang"), ("磊", "lei"), ("军", "jun"), ("洋", "yang"),
    ("勇", "yong"), ("艳", "yan"), ("杰", "jie"), ("娟", "juan"), ("涛", "tao"),
    ("明", "ming"), ("超", "chao"), ("秀", "xiu"), ("霞", "xia"), ("平", "ping"),
    ("刚", "gang"), ("桂", "gui"), ("英", "ying"), ("华", "hua"), ("建", "jian"),
    ("文", "wen"), ("玲", "ling"), ("海", "hai"), ("晓", "xiao"), ("婷", "ting"),
    ("宇", "yu"), ("浩", "hao"), ("欣", "xin"), ("子", "zi"), ("梓", "zi"),
    ("涵", "han"), ("思", "si"), ("雨", "yu"), ("嘉", "jia"), ("俊", "jun"),
    ("鹏", "peng"), ("辉", "hui"), ("颖", "ying"), ("琳", "lin"), ("志", "zhi"),
    ("红", "hong"), ("斌", "bin"), ("倩", "qian"), ("佳", "jia"), ("凯", "kai"),
)  # fmt: skip

EN_FIRST_NAMES = (
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Susan", "Richard", "Jessica", "Thomas", "Sarah", "Daniel",
    "Karen", "Matthew", "Emily", "Andrew", "Olivia", "Kevin", "Sophie", "Lucas", "Hannah",
)  # fmt: skip
EN_LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson",
    "Taylor", "Thomas", "Moore", "Martin", "Jackson", "White", "Harris", "Clark", "Lewis",
    "Walker", "Hall", "Young", "King", "Wright", "Scott", "Green", "Baker", "Murphy",
)  # fmt: skip

STREETS = (
    "人民路", "中山路", "解放路", "建设路", "长江路", "和平路", "科技路", "创新大道",
    "世纪大道", "滨江大道", "学院路", "高新路", "东方路", "南京路", "淮海路", "复兴路",
)  # fmt: skip

SOURCES = (
    "官网", "展会", "转介绍", "电话营销", "合作伙伴", "广告", "社交媒体", "招投标", "线下活动",
    "老客户",
)  # fmt: skip
SOURCE_WEIGHTS = (18, 12, 20, 15, 10, 10, 6, 4, 3, 2)

TAGS = (
    "重点客户", "新客户", "续约", "流失风险", "高潜力", "价格敏感", "决策者已接触", "上市公司",
    "中小企业", "海外客户", "政府客户",
)  # fmt: skip
# at most one ownership tag per company; English-named companies are foreign-invested
OWNERSHIP_TAGS = ("民营企业", "国有企业")
FOREIGN_TAG = "外资企业"

CONTACT_TITLES_CN = (
    "总经理", "副总经理", "采购经理", "采购专员", "技术总监", "IT经理", "财务经理",
    "市场总监", "运营经理", "行政主管", "项目经理", "法务专员",
)  # fmt: skip
CONTACT_TITLES_EN = (
    "CEO", "General Manager", "Procurement Manager", "CTO", "IT Manager", "CFO",
    "Marketing Director", "Operations Manager", "Project Manager", "Legal Counsel",
)  # fmt: skip
DECISION_TITLES = frozenset(
    {"总经理", "副总经理", "技术总监", "CEO", "General Manager", "CTO", "CFO"}
)

OPPORTUNITY_TOPICS = (
    "CRM 系统采购", "年度服务续约", "数据平台建设", "设备采购", "云服务迁移", "安全审计服务",
    "培训服务", "定制开发", "渠道合作", "扩容项目", "运维外包", "咨询服务",
)  # fmt: skip

TICKET_TITLES = (
    "无法登录系统", "发票信息有误", "数据导出失败", "请求增加账号", "报表数据不一致",
    "合同续签咨询", "产品使用培训", "接口调用超时", "账单金额疑问", "功能改进建议",
    "Password reset request", "Invoice copy needed", "API rate limit question",
)  # fmt: skip

INTERACTION_SUMMARIES = (
    "电话沟通需求，客户关注价格与交付周期", "上门拜访，演示新版本功能", "发送报价单并跟进反馈",
    "微信确认合同细节", "参加客户年度规划会议", "回访使用情况，客户满意", "沟通续约方案",
    "Follow-up call about renewal terms", "Sent product brochure by e-mail",
)  # fmt: skip

PERSONAL_MAIL_DOMAINS = ("qq.com", "163.com", "126.com", "gmail.com", "outlook.com", "foxmail.com")
